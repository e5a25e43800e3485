"""The artifact manifest (v2xfusion_tools/export/manifest.py, artifacts.py): geometry, files, hashes,
precisions, and what a tampered or foreign folder gives."""
import json

import numpy as np
import pytest

from v2xfusion_tools.export.manifest import (FORMAT_VERSION, ManifestError, model_file, read_manifest, sha256_of,
                                             verify_files)

from .conftest import STATIC_V


def test_pipeline_a_manifest_has_every_geometry_number_file_hash_and_precision(detector_a, artifacts_a):
    config, model, _ = detector_a
    manifest = read_manifest(artifacts_a.folder)
    assert manifest["format_version"] == FORMAT_VERSION and manifest["writer"]["version"]
    assert (manifest["preset"], manifest["pipeline"]) == ("kitti", "A")
    assert artifacts_a.folder.parts[-2:] == ("kitti", "A")
    assert manifest["class_names"] == config["class_names"]
    for key, value in config["geometry"].items():
        assert manifest["geometry"][key] == value, key
    assert manifest["postprocess"] == config["postprocess"]
    assert manifest["geometry"]["pillar_size"] == pytest.approx([0.8, 0.8, 8.0])
    assert manifest["head"]["outputs"] == ["heatmap", "reg", "height", "dim", "rot", "vel"]
    for name, record in manifest["files"].items():
        assert sha256_of(artifacts_a.folder / name) == record["sha256"], name
    assert set(manifest["stages"]) == {"camera.backbone", "lidar_pfe", "fuser", "head"}
    pfe = manifest["stages"]["lidar_pfe"]
    assert model_file(manifest, "lidar_pfe", "fp32")["file"] == f"lidar_pfe_v{STATIC_V}.onnx"
    assert model_file(manifest, "lidar_pfe", "fp32", prefer_static=False)["file"] == "lidar_pfe.onnx"
    assert pfe["inputs"]["voxels"]["shape"] == [-1, 32, 4] and pfe["inputs"]["coors"]["dtype"] == "int32"
    assert manifest["stages"]["head"]["outputs"]["heatmap"]["shape"] == [1, 3, 32, 32]
    fp16 = model_file(manifest, "camera.backbone", "fp16")
    assert fp16["file"] == "camera.backbone_fp16.xml" and fp16["weights"] in manifest["files"]
    with pytest.raises(ManifestError, match="no int8 model"):
        model_file(manifest, "head", "int8")


def test_pipeline_b_manifest_names_its_geometry_files(artifacts_b):
    manifest = read_manifest(artifacts_b.folder)
    geometry = manifest["bevpool_geometry"]
    indices = manifest["files"][geometry["indices"]]
    assert indices["dtype"] == "int32" and indices["bytes"] == 4 * indices["shape"][0]
    assert manifest["stages"]["unified"]["inputs"]["intervals"]["shape"] == [-1, 3]
    assert manifest["geometry"]["coors_layout"] == ["batch", "z", "y", "x"]
    assert np.asarray(geometry["img_aug_matrix"]).shape == (4, 4)
    assert {m["precision"] for m in manifest["stages"]["unified"]["models"]} == {"fp32", "fp16"}


def test_a_modified_file_or_another_format_version_is_refused(artifacts_a, tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    manifest = read_manifest(artifacts_a.folder)
    for name in ("head.onnx", "manifest.json"):
        (folder / name).write_bytes((artifacts_a.folder / name).read_bytes())
    small = {**manifest, "files": {"head.onnx": manifest["files"]["head.onnx"]}}
    verify_files(folder, small)
    data = bytearray((folder / "head.onnx").read_bytes())
    data[-10] ^= 0xFF
    (folder / "head.onnx").write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="head.onnx: sha256 differs"):
        verify_files(folder, small)
    with pytest.raises(ManifestError, match="missing"):
        verify_files(folder, {"files": {"fuser.onnx": {"sha256": "0"}}})
    (folder / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(ManifestError, match="format_version 99"):
        read_manifest(folder)
    with pytest.raises(ManifestError, match="no manifest"):
        read_manifest(tmp_path / "nowhere")
