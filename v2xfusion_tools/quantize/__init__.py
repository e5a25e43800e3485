"""Quantization: NNCF post-training INT8 of an exported artifact folder (guide §4.2.5, §5.2.6).

`pipeline_a` quantizes the four stages on their FP32 inputs and validates the whole chain; `pipeline_b`
runs the guide's three stages (voxel dump, FP32 pseudo ground truth, PTQ). `ptq` wraps nncf.quantize,
`detections` decodes head outputs from the manifest, `agreement` compares INT8 boxes with FP32 boxes,
`ground_truth` scores both against labels, `samples` reads calibration frames lazily.
"""
