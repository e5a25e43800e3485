"""The compiled v2xfusion kernels (voxelization, scatter, BEVPool-v2, sparse conv, CenterHead decode, NMS).

Everything is implemented in C++ (kernels/src, one source per stage) and re-exported here from the
extension module `_core`; see each function's docstring for shapes and dtypes.
"""

from ._core import (
    BACKEND,
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

__all__ = [
    "BACKEND",
    "SparseConvRulebook",
    "VoxelizeStats",
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
    "voxelize_dynamic",
    "voxelize_hard",
]
