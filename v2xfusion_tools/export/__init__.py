"""Export: a trained model -> ONNX, OpenVINO IR and the artifact manifest the runtime loads (guide §4.2.3-4.2.4,
§5.2.3-5.2.4).

`artifacts.export_artifacts` is what `v2xfusion export` runs: `onnx_pipeline_a` (four stage files),
`geometry` (BEVPool-v2 indices / intervals of a `calibration`), `onnx_unified` (Pipeline B in one graph
with the `custom_ops` nodes), `openvino_ir` (FP16 IR), `metadata` (geometry inside each model),
`manifest` (artifacts/<preset>/<A|B>/manifest.json). `convert_checkpoint` maps published weights.
"""
