"""An artifact folder is held to its manifest: version, preset, pipeline, every file's sha256 and the models'
own geometry metadata; each failure is one clear error naming the file."""
import json
import os

import pytest

from v2xfusion_perception.manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    ManifestError,
    read_manifest,
)
from v2xfusion_perception.pipeline_options import OptionError, PipelineOptions
from v2xfusion_perception.pipelines import open_pipeline


def linked_copy(source, target):
    """A copy of an artifact folder whose files are hard links (cheap); edits must replace a file, not write
    into it, so the original stays intact."""
    for path in source.rglob("*"):
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, destination)
    return target


def rewrite_manifest(folder, change):
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text())
    change(data)
    path.unlink()
    path.write_text(json.dumps(data))


def test_format_version_error_names_file_found_supported_and_fix(reference_a, tmp_path):
    folder = linked_copy(reference_a.artifacts, tmp_path / "A")
    rewrite_manifest(folder, lambda m: m.update(format_version=FORMAT_VERSION + 98))
    with pytest.raises(ManifestError) as error:
        read_manifest(folder)
    text = str(error.value)
    assert str(folder / MANIFEST_NAME) in text
    assert f"format_version {FORMAT_VERSION + 98}" in text and f"reads format_version {FORMAT_VERSION}" in text
    assert "re-export" in text


def test_manifest_of_the_other_preset_is_refused(reference_a, reference_b):
    with pytest.raises(ManifestError, match=r"artifacts of preset 'kitti', but preset 'v2x' was asked for"):
        open_pipeline(reference_a.artifacts, preset="v2x")
    with pytest.raises(ManifestError, match=r"artifacts of pipeline 'B', but pipeline 'A' was asked for"):
        open_pipeline(reference_b.artifacts, pipeline="A")


def test_missing_artifact_file_is_named(reference_a, tmp_path):
    folder = linked_copy(reference_a.artifacts, tmp_path / "A")
    (folder / "head.onnx").unlink()
    with pytest.raises(ManifestError, match=r"head\.onnx: listed in .*manifest\.json but missing"):
        open_pipeline(folder)


def test_modified_model_file_is_refused_before_it_is_read(reference_a, tmp_path):
    folder = linked_copy(reference_a.artifacts, tmp_path / "A")
    target = folder / "camera.backbone.onnx"
    content = bytearray(target.read_bytes())
    content[len(content) // 2] ^= 0xFF
    target.unlink()
    target.write_bytes(bytes(content))
    with pytest.raises(ManifestError, match=r"camera\.backbone\.onnx: sha256 .* modified after export"):
        open_pipeline(folder)
    assert (reference_a.artifacts / "camera.backbone.onnx").read_bytes() != bytes(content)


def test_geometry_mismatch_between_manifest_and_model_metadata_is_an_error(reference_a, tmp_path):
    folder = linked_copy(reference_a.artifacts, tmp_path / "A")
    rewrite_manifest(folder, lambda m: m["geometry"].update(pc_range=[0.0, -40.0, -5.0, 80.0, 40.0, 3.0]))
    with pytest.raises(ManifestError, match=r"model metadata pc_range = \[0\.0, -12\.8.* but .* says \[0\.0, -40\.0"):
        open_pipeline(folder)


def test_model_of_another_preset_copied_in_is_refused(reference_a, tmp_path):
    folder = linked_copy(reference_a.artifacts, tmp_path / "A")
    rewrite_manifest(folder, lambda m: m.update(preset="v2x"))
    with pytest.raises(ManifestError, match=r"model metadata preset = 'kitti' but .* says 'v2x'"):
        open_pipeline(folder)


def test_absent_precision_says_what_exists(reference_b):
    with pytest.raises(ManifestError, match=r"stage 'unified' has no int8 model \(has: fp16, fp32\).*quantize"):
        open_pipeline(reference_b.artifacts, PipelineOptions(precision="int8"))


def test_per_stage_int8_is_refused_for_the_single_model_pipeline(reference_b):
    with pytest.raises(OptionError, match="pipeline B is one model"):
        open_pipeline(reference_b.artifacts, PipelineOptions(precision="int8", int8_stages=("head",)))


def test_folder_without_manifest_is_not_an_artifact_folder(tmp_path):
    with pytest.raises(ManifestError, match="not an artifact folder"):
        read_manifest(tmp_path)
    with pytest.raises(ManifestError, match="artifact folder not found"):
        read_manifest(tmp_path / "nothing")


def test_unknown_options_are_named():
    with pytest.raises(OptionError, match="device"):
        PipelineOptions(device="TPU")
    with pytest.raises(OptionError, match="int8_stages"):
        PipelineOptions(precision="int8", int8_stages=("backbone",))
    with pytest.raises(OptionError, match="need precision int8"):
        PipelineOptions(precision="fp16", int8_stages=("head",))

