"""v2xfusion runtime: camera + LiDAR BEVFusion detection on OpenVINO and our kernels (no torch)."""

# The kernels load the SYCL runtime's oneTBB, which must come before OpenVINO's
# (v2xfusion_kernels/runtime_libraries.py): every runtime module imports OpenVINO after this.
import v2xfusion_kernels  # noqa: F401

__version__ = "0.1.0"
