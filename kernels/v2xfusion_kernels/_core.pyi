"""Type stubs of the compiled module v2xfusion_kernels._core (kept honest by tests/kernels/test_module.py)."""
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_F32 = npt.NDArray[np.float32]
_I32 = npt.NDArray[np.int32]

BACKEND: str

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...

class VoxelizeStats:
    @property
    def num_points(self) -> int: ...
    @property
    def num_nonfinite(self) -> int: ...
    @property
    def num_out_of_range(self) -> int: ...
    @property
    def num_voxel_overflow(self) -> int: ...
    @property
    def num_point_overflow(self) -> int: ...
    @property
    def num_voxels_dropped(self) -> int: ...

def voxelize_hard(
    points: _F32,
    voxel_size: Sequence[float],
    pc_range: Sequence[float],
    max_points: int,
    max_voxels: int,
    batch_index: int = 0,
) -> tuple[_F32, _I32, _I32, VoxelizeStats]: ...
def voxelize_dynamic(
    points: _F32,
    voxel_size: Sequence[float],
    pc_range: Sequence[float],
    batch_index: int = 0,
) -> tuple[_F32, _I32, _I32, VoxelizeStats]: ...
def pillar_scatter(features: _F32, coors: _I32, nx: int, ny: int, out: _F32 | None = None) -> _F32: ...
def frustum_points(
    cam_to_lidar: _F32,
    intrinsics: _F32,
    img_aug: _F32,
    depths: _F32,
    image_size: Sequence[int],
    feature_size: Sequence[int],
) -> _F32: ...
def bev_pool_geometry(
    points: _F32, xbound: Sequence[float], ybound: Sequence[float], zbound: Sequence[float]
) -> tuple[_I32, _I32]: ...
def bev_pool(
    depth: _F32,
    context: _F32,
    indices: _I32,
    intervals: _I32,
    xbound: Sequence[float],
    ybound: Sequence[float],
    zbound: Sequence[float],
    out: _F32 | None = None,
) -> _F32: ...

class SparseConvRulebook:
    @property
    def out_coors(self) -> _I32: ...
    @property
    def neighbors(self) -> _I32: ...
    @property
    def num_in(self) -> int: ...
    @property
    def num_out(self) -> int: ...
    @property
    def out_shape(self) -> tuple[int, int, int]: ...
    @property
    def subm(self) -> bool: ...
    @property
    def pair_counts(self) -> list[int]: ...

def sparse_conv_rulebook(
    coors: _I32,
    spatial_shape: Sequence[int],
    kernel_size: int | Sequence[int] = 3,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    subm: bool = False,
) -> SparseConvRulebook: ...
def sparse_conv(
    features: _F32,
    rulebook: SparseConvRulebook,
    weight: _F32,
    bias: _F32 | None = None,
    relu: bool = False,
) -> _F32: ...
def sparse_to_dense(
    features: _F32, coors: _I32, spatial_shape: Sequence[int], out: _F32 | None = None
) -> _F32: ...
def centerhead_decode(
    heatmap: _F32,
    reg: _F32,
    height: _F32,
    dim: _F32,
    rot: _F32,
    vel: _F32 | None = None,
    *,
    pc_range: Sequence[float],
    voxel_size: Sequence[float],
    out_size_factor: float,
    post_center_range: Sequence[float],
    score_threshold: float,
    max_num: int = 500,
    pool_size: int = 3,
    apply_sigmoid: bool = True,
    label_offset: int = 0,
) -> tuple[_F32, _F32, _I32]: ...
def rotated_nms(
    boxes: _F32,
    scores: _F32,
    labels: _I32,
    iou_threshold: float,
    pre_max_size: int,
    post_max_size: int,
) -> _I32: ...
def circle_nms(
    boxes: _F32,
    scores: _F32,
    labels: _I32,
    radius: Sequence[float],
    pre_max_size: int,
    post_max_size: int,
) -> _I32: ...
def bev_iou(boxes_a: _F32, boxes_b: _F32) -> _F32: ...

class _Kernels:
    """The kernel methods HostKernels and SyclKernels share (the module-level functions plus self)."""
    @property
    def name(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def compile_seconds(self) -> float: ...
    def voxelize_hard(
        self,
        points: _F32,
        voxel_size: Sequence[float],
        pc_range: Sequence[float],
        max_points: int,
        max_voxels: int,
        batch_index: int = 0,
    ) -> tuple[_F32, _I32, _I32, VoxelizeStats]: ...
    def voxelize_dynamic(
        self,
        points: _F32,
        voxel_size: Sequence[float],
        pc_range: Sequence[float],
        batch_index: int = 0,
    ) -> tuple[_F32, _I32, _I32, VoxelizeStats]: ...
    def pillar_scatter(self, features: _F32, coors: _I32, nx: int, ny: int, out: _F32 | None = None) -> _F32: ...
    def frustum_points(
        self,
        cam_to_lidar: _F32,
        intrinsics: _F32,
        img_aug: _F32,
        depths: _F32,
        image_size: Sequence[int],
        feature_size: Sequence[int],
    ) -> _F32: ...
    def bev_pool_geometry(
        self, points: _F32, xbound: Sequence[float], ybound: Sequence[float], zbound: Sequence[float]
    ) -> tuple[_I32, _I32]: ...
    def bev_pool(
        self,
        depth: _F32,
        context: _F32,
        indices: _I32,
        intervals: _I32,
        xbound: Sequence[float],
        ybound: Sequence[float],
        zbound: Sequence[float],
        out: _F32 | None = None,
    ) -> _F32: ...
    def sparse_conv_rulebook(
        self,
        coors: _I32,
        spatial_shape: Sequence[int],
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        subm: bool = False,
    ) -> SparseConvRulebook: ...
    def sparse_conv(
        self,
        features: _F32,
        rulebook: SparseConvRulebook,
        weight: _F32,
        bias: _F32 | None = None,
        relu: bool = False,
    ) -> _F32: ...
    def sparse_to_dense(
        self, features: _F32, coors: _I32, spatial_shape: Sequence[int], out: _F32 | None = None
    ) -> _F32: ...
    def centerhead_decode(
        self,
        heatmap: _F32,
        reg: _F32,
        height: _F32,
        dim: _F32,
        rot: _F32,
        vel: _F32 | None = None,
        *,
        pc_range: Sequence[float],
        voxel_size: Sequence[float],
        out_size_factor: float,
        post_center_range: Sequence[float],
        score_threshold: float,
        max_num: int = 500,
        pool_size: int = 3,
        apply_sigmoid: bool = True,
        label_offset: int = 0,
    ) -> tuple[_F32, _F32, _I32]: ...
    def rotated_nms(
        self,
        boxes: _F32,
        scores: _F32,
        labels: _I32,
        iou_threshold: float,
        pre_max_size: int,
        post_max_size: int,
    ) -> _I32: ...
    def circle_nms(
        self,
        boxes: _F32,
        scores: _F32,
        labels: _I32,
        radius: Sequence[float],
        pre_max_size: int,
        post_max_size: int,
    ) -> _I32: ...
    def bev_iou(self, boxes_a: _F32, boxes_b: _F32) -> _F32: ...

class HostKernels(_Kernels):
    def __init__(self, fallback_reason: str | None = None) -> None: ...
    @property
    def fallback_reason(self) -> str | None: ...
