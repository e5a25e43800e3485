"""v2xfusion runtime: camera + LiDAR BEVFusion detection on OpenVINO and our kernels (no torch)."""

__version__ = "0.1.0"
