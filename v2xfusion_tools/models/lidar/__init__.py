"""LiDAR branch: voxelization, PointPillars (Pipeline A) and the sparse SECOND encoder (Pipeline B)."""
