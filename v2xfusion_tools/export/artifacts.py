"""`v2xfusion export`: a trained model -> the artifact folder the runtime loads (design.md §1).

Pipeline A (guide §4.2.3-4.2.4): the four ONNX files (+ the static-V PFE), an FP16 IR of each, and
the manifest. Pipeline B (guide §5.2.3-5.2.4): the BEVPool-v2 geometry of one calibration, the
unified ONNX with custom ops, its FP16 IR (and, with `fp16_onnx`, the guide's FP16 ONNX), and the
manifest. `quantize` later adds the INT8 models to the same folder.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import onnx

from v2xfusion_perception.errors import V2XError
from v2xfusion_tools.export import geometry as geometry_files
from v2xfusion_tools.data.settings import ImageSettings, data_settings
from v2xfusion_tools.export.calibration import CameraCalibration, image_aug_matrix
from v2xfusion_tools.export.manifest import (add_file, add_model, add_stage, artifact_dir, new_manifest,
                                             sha256_of, write_manifest)
from v2xfusion_tools.export.metadata import onnx_metadata_text
from v2xfusion_tools.export.onnx_pipeline_a import PFE_INPUTS, STAGES, export_pipeline_a, pfe_file_name
from v2xfusion_tools.export.onnx_unified import UNIFIED_FILE, UNIFIED_FP16_FILE, export_unified, fp16_weights
from v2xfusion_tools.export.openvino_ir import make_core, onnx_to_fp16_ir
from v2xfusion_tools.models import BEVFusion, build_model
from v2xfusion_tools.models.lidar.pillar_encoder import PointPillarsEncoder
from v2xfusion_tools.progress import ProgressFactory
from v2xfusion_tools.training.checkpoints import load_weights

GEOMETRY_DIR = "geometry"
UNIFIED_STAGE = "unified"


@dataclass(frozen=True)
class ExportResult:
    """The artifact folder, its manifest and the files written (relative names)."""

    folder: Path
    manifest: Path
    files: list[str]


def pipeline_of(model: BEVFusion) -> str:
    """"A" for a PointPillars LiDAR encoder, "B" for the sparse encoder."""
    if "lidar" not in model.encoders:
        raise V2XError("model: no LiDAR encoder; the artifacts of both pipelines need camera and LiDAR")
    return "A" if isinstance(model.encoders["lidar"]["backbone"], PointPillarsEncoder) else "B"


def load_model(config: Mapping[str, Any], checkpoint: str | Path) -> BEVFusion:
    """build_model(config) with every weight of one of our checkpoints (`v2xfusion train`), eval mode.
    A checkpoint that does not fit is a V2XError; published ones go through `convert-checkpoint`."""
    model = build_model(config)
    load_weights(model, checkpoint)
    return model.eval()


def describe_geometry(config: Mapping[str, Any], model: BEVFusion, pipeline: str) -> dict[str, Any]:
    """The preset's geometry plus every number the export derived from it."""
    geo = dict(config["geometry"])
    vtransform = model.encoders["camera"]["vtransform"]
    lidar = model.encoders["lidar"]["backbone"]
    geo.update({
        "camera_bev_grid": list(vtransform.grid.shape),
        "camera_bev_downsample": vtransform.bev_downsample,
        "depth_bin_count": vtransform.D,
        "depth_bin_values": [round(float(v), 6) for v in vtransform.bins],
        "point_features": ["x", "y", "z", "intensity"],
        "intensity_range": [0.0, 1.0],
    })
    if pipeline == "A":
        geo["pillar_size"] = [float(v) for v in lidar.pts_voxel_encoder.voxel_size]
        geo["coors_layout"] = ["batch", "x", "y", "z"]
    else:
        geo["sparse_shape"] = list(lidar.sparse_shape)
        geo["coors_layout"] = ["batch", "z", "y", "x"]
        geo["voxel_reduce"] = "mean"
    return geo


def describe_head(model: BEVFusion) -> dict[str, Any]:
    head = model.heads["object"]
    return {"tasks": [[head.class_names[i] for i in ids] for ids in head.task_class_ids],
            "outputs": list(head.output_names), "heatmap": "logits", "norm_bbox": head.norm_bbox,
            "with_velocity": head.with_velocity, "box_layout": ["x", "y", "z", "dx", "dy", "dz", "yaw"]}


IMAGE_RESIZE_RULE = ("scale = max(W / W_native, H / H_native); resize; crop W x H centred in x, keeping the "
                     "bottom rows in y (v2xfusion_tools.data.transforms.image_crop, evaluation mode)")


def describe_image(config: Mapping[str, Any]) -> dict[str, Any]:
    """The camera input: size, normalisation (the config's data.image) and the resize / crop rule."""
    image = data_settings(config).image if config.get("data") is not None else ImageSettings()
    return {"network_size": list(config["geometry"]["image_size"]), "channel_order": "RGB", "value_range": [0.0, 1.0],
            "mean": list(image.mean), "std": list(image.std), "resize_rule": IMAGE_RESIZE_RULE}


def onnx_io(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inputs and outputs of an ONNX file as {name: {"shape": [...] (-1 where dynamic), "dtype"}}."""
    graph = onnx.load(path, load_external_data=False).graph

    def describe(values) -> dict[str, Any]:
        described = {}
        for value in values:
            tensor = value.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
            described[value.name] = {"shape": shape,
                                     "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name}
        return described

    return describe(graph.input), describe(graph.output)


def export_artifacts(config: Mapping[str, Any], model: BEVFusion, out_root: str | Path,
                     source: Mapping[str, Any], fixed_v: int | None = None,
                     calibration: CameraCalibration | None = None, fp16_onnx: bool = False,
                     progress: ProgressFactory | None = None) -> ExportResult:
    """Write artifacts/<preset>/<A|B>/ for an eval-mode model (module docstring). Pipeline B needs
    the calibration its BEVPool-v2 geometry is computed from."""
    pipeline = pipeline_of(model)
    folder = artifact_dir(out_root, config["preset"], pipeline)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = new_manifest(config, pipeline, describe_geometry(config, model, pipeline), describe_head(model),
                            describe_image(config), source, "export")
    if pipeline == "A":
        _export_a(config, model, folder, manifest, fixed_v, progress)
    else:
        if calibration is None:
            raise V2XError("calibration: Pipeline B's export needs a camera calibration (--calib FILE or "
                           "--dataset ROOT) for its BEVPool-v2 geometry")
        _export_b(config, model, folder, manifest, calibration, fp16_onnx)
    path = write_manifest(folder, manifest, "export")
    return ExportResult(folder, path, sorted(manifest["files"]))


def _export_a(config, model, folder: Path, manifest: dict, fixed_v: int | None, progress) -> None:
    paths = export_pipeline_a(model, config, folder, fixed_v, progress)
    max_voxels = int(config["geometry"]["max_voxels"])
    for name in STAGES:
        add_stage(manifest, name, *onnx_io(paths[name]))
    core = make_core()
    for stem, onnx_path in paths.items():
        stage_name = "lidar_pfe" if stem.startswith("lidar_pfe") else stem
        static = fixed_v if stem == pfe_file_name(fixed_v)[:-5] and fixed_v is not None else None
        add_model(manifest, folder, stage_name, "fp32", onnx_path.name, static)
        dynamic = PFE_INPUTS if stage_name == "lidar_pfe" and static is None else ()
        xml = onnx_to_fp16_ir(core, onnx_path, folder / f"{stem}_fp16.xml", onnx_metadata_text(onnx_path), dynamic,
                              max_voxels)
        add_model(manifest, folder, stage_name, "fp16", xml.name, static)


def _export_b(config, model, folder: Path, manifest: dict, calibration: CameraCalibration, fp16_onnx: bool) -> None:
    vtransform = model.encoders["camera"]["vtransform"]
    geometry = geometry_files.precompute_geometry(vtransform, calibration)
    geo_dir = folder / GEOMETRY_DIR
    for name in geometry_files.write_geometry(geo_dir, geometry, calibration):
        add_file(manifest, folder, f"{GEOMETRY_DIR}/{name}")
    manifest["files"][f"{GEOMETRY_DIR}/{geometry_files.INDICES_FILE}"].update(
        dtype="int32", shape=list(geometry.indices.shape))
    manifest["files"][f"{GEOMETRY_DIR}/{geometry_files.INTERVALS_FILE}"].update(
        dtype="int32", shape=list(geometry.intervals.shape))
    manifest["bevpool_geometry"] = {
        "indices": f"{GEOMETRY_DIR}/{geometry_files.INDICES_FILE}",
        "intervals": f"{GEOMETRY_DIR}/{geometry_files.INTERVALS_FILE}",
        "calibration": f"{GEOMETRY_DIR}/{geometry_files.CALIBRATION_FILE}",
        "native_image_size": list(calibration.image_size),
        "img_aug_matrix": image_aug_matrix(calibration.image_size, vtransform.image_size).tolist(),
    }
    onnx_path = export_unified(model, config, geometry, folder / UNIFIED_FILE)
    add_stage(manifest, UNIFIED_STAGE, *onnx_io(onnx_path))
    add_model(manifest, folder, UNIFIED_STAGE, "fp32", onnx_path.name)
    xml = onnx_to_fp16_ir(make_core(extension=True), onnx_path, folder / "bevfusion_unified_fp16.xml",
                          onnx_metadata_text(onnx_path))
    add_model(manifest, folder, UNIFIED_STAGE, "fp16", xml.name)
    if fp16_onnx:
        fp16_weights(onnx_path, folder / UNIFIED_FP16_FILE)
        add_file(manifest, folder, UNIFIED_FP16_FILE, role="fp16 weights ONNX (guide §5.3 step 7)")


def checkpoint_source(config_path: str | Path | None, checkpoint: str | Path | None) -> dict[str, Any]:
    """What the manifest records about where the model came from."""
    source: dict[str, Any] = {"config": str(config_path) if config_path else None}
    if checkpoint is not None:
        source.update(checkpoint=str(checkpoint), checkpoint_sha256=sha256_of(checkpoint))
    return source
