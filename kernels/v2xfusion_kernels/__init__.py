"""The compiled v2xfusion kernels (voxelization, scatter, BEVPool-v2, sparse conv, CenterHead decode, NMS).

Everything is implemented in C++ (kernels/src, one source per stage) and re-exported here from the
extension module `_core`; see each function's docstring for shapes and dtypes. The module-level
functions run on the host backend; `backend("host" | "sycl" | "auto", device=...)` returns an
object with the same functions as methods on the chosen backend (see `backends`).
"""

from .runtime_libraries import preload_tbb

# before anything loads OpenVINO's older oneTBB (runtime_libraries says why)
PRELOADED_TBB = preload_tbb()

from ._core import (  # noqa: E402
    BACKEND,
    HostKernels,
    SparseConvRulebook,
    VoxelizeStats,
    bev_iou,
    bev_pool,
    bev_pool_geometry,
    centerhead_decode,
    circle_nms,
    frustum_points,
    get_num_threads,
    pillar_scatter,
    rotated_nms,
    set_num_threads,
    sparse_conv,
    sparse_conv_rulebook,
    sparse_to_dense,
    voxelize_dynamic,
    voxelize_hard,
)
from .backends import BACKENDS, DEFAULT_SYCL_DEVICE, SyclUnavailableError, backend, sycl_devices  # noqa: E402

__all__ = [
    "BACKEND",
    "BACKENDS",
    "DEFAULT_SYCL_DEVICE",
    "HostKernels",
    "SparseConvRulebook",
    "SyclUnavailableError",
    "VoxelizeStats",
    "backend",
    "bev_iou",
    "bev_pool",
    "bev_pool_geometry",
    "centerhead_decode",
    "circle_nms",
    "frustum_points",
    "get_num_threads",
    "pillar_scatter",
    "rotated_nms",
    "set_num_threads",
    "sparse_conv",
    "sparse_conv_rulebook",
    "sparse_to_dense",
    "sycl_devices",
    "voxelize_dynamic",
    "voxelize_hard",
]
