"""Opening the runtime pipeline of an artifact folder: what the ROS node and the offline runner call.

`open_pipeline(folder, options, preset=..., pipeline=...)` reads the folder's manifest (refusing one of
another format version, preset or pipeline than asked for) and builds PipelineA or PipelineB from it.
Neither pulls in torch: numpy, OpenVINO and the kernels only.
"""
from __future__ import annotations

from pathlib import Path

from v2xfusion_perception.manifest import read_manifest
from v2xfusion_perception.pipeline_a import PipelineA
from v2xfusion_perception.pipeline_b import PipelineB
from v2xfusion_perception.pipeline_options import PipelineOptions


def open_pipeline(folder: str | Path, options: PipelineOptions | None = None, preset: str | None = None,
                  pipeline: str | None = None) -> PipelineA | PipelineB:
    """The pipeline of artifacts/<preset>/<pipeline> (`folder`); preset / pipeline, when given, must be the
    manifest's. Raises ManifestError / OptionError (V2XError) naming what does not fit."""
    manifest = read_manifest(folder, preset=preset, pipeline=pipeline)
    options = options or PipelineOptions()
    if manifest.pipeline == "A":
        return PipelineA(manifest, options)
    return PipelineB(manifest, options)
