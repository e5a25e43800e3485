"""PyTorch models of both pipelines (BEVFusion with PointPillars or SparseEncoder), built from config.

`build_model(config)` validates the config's `model` section against the constructors and fills the
geometry from the preset; `BEVFusion` takes a `FusionBatch` and returns losses (training) or a
`FusionOutput` (evaluation); `stages.export_stages` cuts it into the ONNX stages of guide §4.1.
"""
from v2xfusion_tools.models.bevfusion import BEVFusion, FusionBatch, FusionOutput
from v2xfusion_tools.models.builder import build_model
from v2xfusion_tools.models.heads.decode import Detections

__all__ = ["BEVFusion", "Detections", "FusionBatch", "FusionOutput", "build_model"]
