"""Reading an artifact folder's manifest.json (design.md §1) and holding its files to it.

The manifest, written by `v2xfusion export` / `quantize` (v2xfusion_tools/export/manifest.py owns the
layout), is the runtime's only source of geometry, class names, decoding settings and model files.
Here it is read and checked: its format version (an error names the file, the version found, the
version supported and the fix), the preset and pipeline a caller expects, and, for every file the
runtime loads, its sha256 over the very bytes that are then handed to OpenVINO or numpy (a file that
changed after export is refused before anything reads it). `check_model_metadata` compares the
geometry a model carries (ONNX metadata_props / IR rt_info) with the manifest's, so a model copied in
from another preset or export is refused by name.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from v2xfusion_perception.errors import V2XError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
PIPELINES = ("A", "B")
PRECISIONS = ("fp32", "fp16", "int8")
REQUIRED_KEYS = ("preset", "pipeline", "class_names", "geometry", "postprocess", "head", "image", "stages", "files")
# model metadata key -> where the manifest holds the same value (a model may carry more keys)
_METADATA_SOURCES = {
    "preset": ("preset",), "pipeline": ("pipeline",), "class_names": ("class_names",),
    "pc_range": ("geometry", "pc_range"), "voxel_size": ("geometry", "voxel_size"),
    "bev_size": ("geometry", "bev_size"), "out_size_factor": ("geometry", "out_size_factor"),
    "max_voxels": ("geometry", "max_voxels"), "sparse_shape": ("geometry", "sparse_shape"),
}
# models must carry at least these (what tells a stage of one export from another's)
_REQUIRED_METADATA = ("preset", "pipeline", "stage", "pc_range", "bev_size")


class ManifestError(V2XError):
    """An artifact folder's manifest is missing, of another version, preset or pipeline, names a file
    that is missing or was modified, or disagrees with a model's own metadata."""


@dataclass(frozen=True)
class ModelEntry:
    """One model file of a stage: precision fp32 | fp16 | int8, file (.onnx or .xml), weights (.bin of
    an IR, else None), static_voxels (a PFE padded to V pillars, else None)."""

    stage: str
    precision: str
    file: str
    weights: str | None
    static_voxels: int | None


@dataclass(frozen=True)
class Manifest:
    """A read manifest. folder: the artifact folder; path: its manifest.json; data: the JSON content."""

    folder: Path
    path: Path
    data: Mapping[str, Any]

    @property
    def preset(self) -> str:
        return self.data["preset"]

    @property
    def pipeline(self) -> str:
        return self.data["pipeline"]

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.data["class_names"])

    @property
    def geometry(self) -> Mapping[str, Any]:
        return self.data["geometry"]

    @property
    def postprocess(self) -> Mapping[str, Any]:
        return self.data["postprocess"]

    @property
    def head(self) -> Mapping[str, Any]:
        return self.data["head"]

    @property
    def image(self) -> Mapping[str, Any]:
        return self.data["image"]

    def value(self, *keys: str) -> Any:
        """A nested value, e.g. value("geometry", "pc_range"); a missing one is a ManifestError."""
        node: Any = self.data
        for depth, key in enumerate(keys):
            if not isinstance(node, Mapping) or key not in node:
                raise ManifestError(f"{self.path}: no '{'.'.join(keys[:depth + 1])}' (written by an export that "
                                    f"lacks it; re-export with this version of v2xfusion)")
            node = node[key]
        return node

    def stage_io(self, stage: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        """Declared inputs and outputs of a stage: {name: {"shape": [...] (-1 dynamic), "dtype"}}."""
        entry = self.value("stages", stage)
        return entry.get("inputs", {}), entry.get("outputs", {})

    def model(self, stage: str, precision: str, prefer_static: bool = True) -> ModelEntry:
        """The stage's model file of a precision; of a dynamic and a static-V PFE, the static one when
        prefer_static (guide §4.2.7: the deploy runner prefers lidar_pfe_v7000). Raises ManifestError
        saying what the manifest has instead."""
        if precision not in PRECISIONS:
            raise ManifestError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
        models = self.value("stages", stage).get("models", [])
        matching = [m for m in models if m.get("precision") == precision]
        if not matching:
            have = sorted({str(m.get("precision")) for m in models}) or ["none"]
            fix = " (run `v2xfusion quantize` for INT8 models)" if precision == "int8" else ""
            raise ManifestError(f"{self.path}: stage '{stage}' has no {precision} model (has: {', '.join(have)})"
                                f"{fix}")
        matching.sort(key=lambda m: (m.get("static_voxels") is None) == prefer_static)
        chosen = matching[0]
        weights = chosen.get("weights")
        for name in (chosen["file"], weights):
            if name is not None and name not in self.data["files"]:
                raise ManifestError(f"{self.path}: stage '{stage}' names {name}, which is not among its files")
        static = chosen.get("static_voxels")
        return ModelEntry(stage, precision, chosen["file"], weights, None if static is None else int(static))

    def read_verified(self, name: str) -> bytes:
        """The bytes of a listed file, after checking their sha256 against the manifest's."""
        record = self.data["files"].get(name)
        if record is None:
            raise ManifestError(f"{self.path}: lists no file {name!r}")
        path = self.folder / name
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise ManifestError(f"{path}: listed in {self.path} but missing (copy the whole artifact folder, or "
                                f"re-export it)") from None
        except OSError as exc:
            raise ManifestError(f"{path}: cannot read it ({exc.strerror})") from None
        digest = hashlib.sha256(content).hexdigest()
        if digest != record.get("sha256"):
            raise ManifestError(f"{path}: sha256 {digest[:12]}... differs from the {str(record.get('sha256'))[:12]}... "
                                f"recorded in {self.path}: the file was modified after export; refusing to load it "
                                f"(re-export the artifacts)")
        return content

    def check_model_metadata(self, entry: ModelEntry, metadata: Mapping[str, Any]) -> None:
        """The geometry metadata a model carries must match the manifest (design.md §1).

        metadata: {key: decoded value} from the model file (preset, pipeline, stage, pc_range, ...).
        """
        where = f"{self.folder / entry.file}"
        missing = [key for key in _REQUIRED_METADATA if key not in metadata]
        if missing:
            raise ManifestError(f"{where}: carries no v2xfusion metadata ({', '.join(missing)} missing): not a model "
                                f"written by `v2xfusion export`")
        expected: dict[str, Any] = {"stage": entry.stage, "static_voxels": entry.static_voxels}
        for key, source in _METADATA_SOURCES.items():
            node: Any = self.data
            for part in source:
                node = node.get(part) if isinstance(node, Mapping) else None
            if node is not None:
                expected[key] = node
        for key, value in metadata.items():
            if key in expected and not _same(value, expected[key]):
                raise ManifestError(f"{where}: model metadata {key} = {value!r} but {self.path} says "
                                    f"{expected[key]!r}: the model belongs to another export (preset / stage); "
                                    f"re-export the artifact folder")


def _same(a: Any, b: Any) -> bool:
    """Equality of JSON values, numbers compared with a relative tolerance of 1e-6 (float32 round trips)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
    return a == b


def read_manifest(folder: str | Path, preset: str | None = None, pipeline: str | None = None) -> Manifest:
    """folder/manifest.json, checked for format version, required sections, and (when given) the preset
    and pipeline the caller expects. Raises ManifestError naming the file, the value found and the fix."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise ManifestError(f"{folder}: artifact folder not found (run `v2xfusion export` for this preset and "
                            f"pipeline, or pass the folder that holds {MANIFEST_NAME})")
    if not path.is_file():
        raise ManifestError(f"{path}: no manifest, so {folder} is not an artifact folder (run `v2xfusion export`)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc}); re-export the artifacts") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: expected a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        writer = data.get("writer", {})
        wrote = f" (written by {writer.get('package', '?')} {writer.get('version', '?')})" if isinstance(writer, dict) \
            else ""
        raise ManifestError(f"{path}: format_version {version!r}{wrote}, but this runtime reads format_version "
                            f"{FORMAT_VERSION}: re-export the artifacts with this version of v2xfusion "
                            f"(`v2xfusion export`), or run them with the version that wrote them")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ManifestError(f"{path}: missing section(s) {', '.join(missing)}; re-export the artifacts")
    if data["pipeline"] not in PIPELINES:
        raise ManifestError(f"{path}: pipeline {data['pipeline']!r} is not one of {', '.join(PIPELINES)}")
    if preset is not None and data["preset"] != preset:
        raise ManifestError(f"{path}: artifacts of preset {data['preset']!r}, but preset {preset!r} was asked for: "
                            f"pass --preset {data['preset']} or the artifact folder of {preset} "
                            f"(artifacts/{preset}/{pipeline or data['pipeline']})")
    if pipeline is not None and data["pipeline"] != pipeline:
        raise ManifestError(f"{path}: artifacts of pipeline {data['pipeline']!r}, but pipeline {pipeline!r} was asked "
                            f"for: pass --pipeline {data['pipeline']} or the artifact folder of pipeline {pipeline}")
    return Manifest(folder, path, data)

