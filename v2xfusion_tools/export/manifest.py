"""The artifact manifest (design.md §1): artifacts/<preset>/<pipeline>/manifest.json.

The contract between export / quantize and the runtime: preset, pipeline, class names, every geometry
number, the head's outputs and tasks, the image normalisation, per stage its inputs / outputs and the
model file of each precision, every file with its sha256, and who wrote it (format and writer
versions). `export` creates it; `quantize` adds INT8 models and its agreement report. Files are
named relative to the folder; the runtime verifies each sha256 before loading and reads geometry
from here only.

Layout of `stages.<name>.models` (one entry per model file of the stage):
    {"precision": "fp32" | "fp16" | "int8", "file": "<name>.onnx" | "<name>.xml",
     "weights": "<name>.bin" (IR only), "static_voxels": V (a PFE padded to V pillars) or null}
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from v2xfusion_perception.errors import V2XError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
PIPELINES = ("A", "B")
PRECISIONS = ("fp32", "fp16", "int8")
WRITER_PACKAGE = "v2xfusion_perception"  # the distribution that ships v2xfusion_tools


class ManifestError(V2XError):
    """An artifact folder's manifest is missing, of another format version, or names a bad file."""


def artifact_dir(root: str | Path, preset: str, pipeline: str) -> Path:
    """artifacts/<preset>/<pipeline> (pipeline "A" or "B", as the node's `pipeline` parameter)."""
    if pipeline not in PIPELINES:
        raise ManifestError(f"pipeline: expected one of {', '.join(PIPELINES)}, got {pipeline!r}")
    return Path(root) / preset / pipeline


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def writer_info(command: str) -> dict[str, str]:
    return {"package": "v2xfusion_tools", "version": importlib.metadata.version(WRITER_PACKAGE),
            "command": command}


def new_manifest(config: Mapping[str, Any], pipeline: str, geometry: Mapping[str, Any],
                 head: Mapping[str, Any], image: Mapping[str, Any], source: Mapping[str, Any],
                 command: str) -> dict[str, Any]:
    """A manifest with no stages yet. geometry: the preset's geometry plus what the export derived
    (pillar size, sparse shape, camera BEV grid, ...); head: tasks, output names, decoding flags;
    image: normalisation and resize rule; source: config / checkpoint it was exported from."""
    return {
        "format_version": FORMAT_VERSION,
        "writer": writer_info(command),
        "preset": config["preset"],
        "pipeline": pipeline,
        "class_names": list(config["class_names"]),
        "geometry": dict(geometry),
        "postprocess": dict(config["postprocess"]),
        "head": dict(head),
        "image": dict(image),
        "source": dict(source),
        "stages": {},
        "files": {},
    }


def add_stage(manifest: dict, name: str, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
    """Declare a stage with its I/O ({name: {"shape": [...] (-1 dynamic), "dtype": "float32"}})."""
    manifest["stages"][name] = {"inputs": dict(inputs), "outputs": dict(outputs), "models": []}


def add_model(manifest: dict, folder: Path, stage: str, precision: str, file: str,
              static_voxels: int | None = None) -> None:
    """Record a model file of `stage` (an .onnx, or an .xml with its .bin) and hash it; a model of the
    same stage, precision and static_voxels is replaced."""
    if precision not in PRECISIONS:
        raise ManifestError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    if stage not in manifest["stages"]:
        raise ManifestError(f"stage {stage!r}: not in the manifest of {folder} (export it first)")
    entry: dict[str, Any] = {"precision": precision, "file": file, "static_voxels": static_voxels}
    add_file(manifest, folder, file)
    if file.endswith(".xml"):
        entry["weights"] = file[:-4] + ".bin"
        add_file(manifest, folder, entry["weights"])
    models = manifest["stages"][stage]["models"]
    models[:] = [m for m in models if (m["precision"], m["static_voxels"]) != (precision, static_voxels)]
    models.append(entry)


def add_file(manifest: dict, folder: Path, file: str, **details: Any) -> None:
    """Hash `folder / file` into manifest["files"] (with optional details: dtype, shape, role)."""
    path = folder / file
    if not path.is_file():
        raise ManifestError(f"{path}: file to record in the manifest does not exist")
    manifest["files"][file] = {"sha256": sha256_of(path), "bytes": path.stat().st_size, **details}


def write_manifest(folder: Path, manifest: dict, command: str) -> Path:
    """Write folder/manifest.json (sorted stage models, stable key order), stamping the writer."""
    manifest["writer"] = writer_info(command)
    for stage in manifest["stages"].values():
        stage["models"].sort(key=lambda m: (PRECISIONS.index(m["precision"]), m["static_voxels"] or 0))
    path = folder / MANIFEST_NAME
    path.write_text(_to_json(manifest) + "\n")
    return path


def _to_json(value: Any, indent: int = 0) -> str:
    """JSON with mappings one key per line and lists of scalars on one line (readable geometry)."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}{json.dumps(str(k))}: {_to_json(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, (list, tuple)):
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            return json.dumps(list(value))
        items = [f"{pad}{_to_json(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    return json.dumps(value)


def read_manifest(folder: str | Path) -> dict:
    """folder/manifest.json, checked for its format version. Raises ManifestError naming the file."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{path}: no manifest (run `v2xfusion export` for this preset and pipeline first)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from None
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise ManifestError(f"{path}: format_version {version!r}, this tool reads {FORMAT_VERSION}: "
                            f"re-export the artifacts with this version of v2xfusion")
    return manifest


def verify_files(folder: str | Path, manifest: Mapping[str, Any]) -> None:
    """Every file the manifest lists exists with its recorded sha256; raises ManifestError otherwise."""
    folder = Path(folder)
    for name, record in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise ManifestError(f"{path}: listed in {folder / MANIFEST_NAME} but missing")
        if sha256_of(path) != record["sha256"]:
            raise ManifestError(f"{path}: sha256 differs from {folder / MANIFEST_NAME} (modified after export)")


def model_file(manifest: Mapping[str, Any], stage: str, precision: str,
               prefer_static: bool = True) -> Mapping[str, Any]:
    """The stage's model entry of a precision; among several (dynamic / static PFE) the static one
    first when prefer_static. Raises ManifestError listing what exists."""
    models: Sequence[Mapping[str, Any]] = manifest["stages"].get(stage, {}).get("models", [])
    matching = [m for m in models if m["precision"] == precision]
    if not matching:
        have = sorted({m["precision"] for m in models})
        raise ManifestError(f"stage {stage!r}: no {precision} model in the manifest (have: {', '.join(have) or 'none'})")
    matching.sort(key=lambda m: (m["static_voxels"] is None) == prefer_static)
    return matching[0]
