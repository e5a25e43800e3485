"""Fixtures of the runtime tests: the tools-side references (tiny models exported, their PyTorch detections)
made once per session, in subprocesses of their own (torch and OpenVINO in one process fight over threads).

Two references run side by side: pipeline A on the kitti preset (metric depth bins, static-V PFE, INT8
models from the quantize step) and pipeline B on the v2x preset (height bins, custom ops).
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
REFERENCE_TIMEOUT_S = 400


@dataclass(frozen=True)
class Reference:
    """A reference folder: data/ (raw data set), artifacts/<preset>/<pipeline>, reference.npz."""

    root: Path
    preset: str
    pipeline: str

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts" / self.preset / self.pipeline

    def detections(self, frame_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The PyTorch model's boxes (K, 7), scores (K,), labels (K,) of a frame."""
        with np.load(self.root / "reference.npz") as found:
            return found[f"{frame_id}/boxes"], found[f"{frame_id}/scores"], found[f"{frame_id}/labels"]


def _start(out: Path, pipeline: str, preset: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with open(out.parent / f"{out.name}.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", "tests.runtime.reference", str(out), "--pipeline", pipeline,
                                 "--preset", preset, *extra], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="session")
def references(tmp_path_factory) -> dict[str, Reference]:
    """{"A": kitti pipeline A with INT8 models, "B": v2x pipeline B}, built in parallel."""
    base = tmp_path_factory.mktemp("runtime_reference")
    jobs = {"A": (base / "a_kitti", "A", "kitti", ("--int8",)), "B": (base / "b_v2x", "B", "v2x", ())}
    running = {key: _start(out, pipeline, preset, *extra) for key, (out, pipeline, preset, extra) in jobs.items()}
    for key, process in running.items():
        out = jobs[key][0]
        try:
            code = process.wait(timeout=REFERENCE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            code = "timeout"
        if code != 0:
            log = (out.parent / f"{out.name}.log").read_text()[-3000:]
            pytest.fail(f"reference {key} failed ({code}):\n{log}")
    return {key: Reference(out, preset, pipeline) for key, (out, pipeline, preset, _) in jobs.items()}


@pytest.fixture(scope="session")
def reference_a(references) -> Reference:
    return references["A"]


@pytest.fixture(scope="session")
def reference_b(references) -> Reference:
    return references["B"]
