"""`v2xfusion run`: predictions the evaluator reads back to the same AP, pictures and video, the latency table,
clear one-line errors, and frames read ahead on a thread with bounded memory."""
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.evaluation.io import evaluate_folders, frame_ids_in
from v2xfusion_tools.evaluation.kitti_ap import PROTOCOLS
from v2xfusion_tools.run import FrameReader, LoadedFrame

REPO = Path(__file__).resolve().parents[2]


def cli(*args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "v2xfusion_tools.cli", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


RUN_IN_FRESH_PROCESS = """
import json, sys
from pathlib import Path
from v2xfusion_perception.pipeline_options import PipelineOptions
from v2xfusion_tools.run import RunOptions, run
data, artifacts, out = map(Path, sys.argv[1:4])
result = run(RunOptions(data_root=data, preset="kitti", pipeline="A", artifacts=artifacts,
                        pipeline_options=PipelineOptions(threads=2), pred_dir=out / "pred", vis_dir=out / "vis"))
json.dump({"frames": result.frames, "detections": result.detections, "fps": result.fps,
           "evaluation": result.evaluation.as_dict(), "latency": sorted(result.latency),
           "model_share": result.model_share, "video": str(result.video)}, open(out / "result.json", "w"))
"""


def test_dumped_predictions_score_the_same_ap_as_the_run(reference_a, tmp_path):
    # run() in a process of its own, as `v2xfusion run` is: this test process holds torch, the ROS
    # middleware and every earlier test's OpenVINO models, and the run's video writer forks ffmpeg
    done = subprocess.run([sys.executable, "-c", RUN_IN_FRESH_PROCESS, str(reference_a.data),
                           str(reference_a.artifacts), str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["frames"] == 4 and result["detections"] > 0 and result["fps"] > 0
    assert frame_ids_in(tmp_path / "pred") == ["000000", "000001", "000002", "000003"]
    from_files = evaluate_folders(reference_a.data / "training" / "label_2", tmp_path / "pred",
                                  protocol=PROTOCOLS["kitti"])
    in_memory = result["evaluation"]
    assert max(in_memory.values()) > 0.0   # something is detected right, so equality means something
    assert from_files.as_dict() == pytest.approx(in_memory, abs=1e-9)
    assert set(result["latency"]) >= {"camera", "pfe", "fuser", "head", "voxelize", "nms", "total"}
    assert 0.0 < result["model_share"] < 1.0
    assert len(list((tmp_path / "vis").glob("*_camera.png"))) == 4
    assert len(list((tmp_path / "vis").glob("*_bev.png"))) == 4
    video = imageio.get_reader(result["video"])
    assert sum(1 for _ in video) == 4
    video.close()


def test_cli_runs_the_guides_training_folder_and_prints_latency_and_ap(reference_a, tmp_path):
    done = cli("run", reference_a.data / "training", "--preset", "kitti", "--pipeline", "A", "--artifacts",
               reference_a.artifacts, "--num-samples", "2", "--dump-pred", "--pred-dir", tmp_path / "pred",
               "--threads", "2", "--int8-head")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "p99 ms" in done.stdout and "head" in done.stdout and "frames/s end to end" in done.stdout
    assert "KITTI AP40" in done.stdout
    assert frame_ids_in(tmp_path / "pred") == ["000000", "000001"]


def test_cli_runs_a_dair_native_set_without_labels(reference_b):
    done = cli("run", reference_b.data, "--preset", "v2x", "--pipeline", "B", "--artifacts", reference_b.artifacts,
               "--num-samples", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "unified" in done.stdout and "no KITTI-format labels" in done.stdout


def test_cli_bad_input_is_one_line_and_exit_code_2(reference_b, tmp_path):
    wrong_preset = cli("run", reference_b.data, "--preset", "kitti", "--pipeline", "B", "--artifacts",
                       reference_b.artifacts)
    assert wrong_preset.returncode == 2
    assert "artifacts of preset 'v2x', but preset 'kitti' was asked for" in wrong_preset.stderr
    assert "Traceback" not in wrong_preset.stderr
    missing = cli("run", reference_b.data, "--pipeline", "B", "--artifacts", tmp_path / "none")
    assert missing.returncode == 2 and "artifact folder not found" in missing.stderr
    mixed = cli("run", reference_b.data, "--fp16", "--int8")
    assert mixed.returncode == 2 and "choose one precision" in mixed.stderr


def fake_frame(frame_id: str, megabytes: int = 8) -> LoadedFrame:
    """A frame of `megabytes` of image (what the reader holds in memory per queued frame)."""
    side = int((megabytes * 2 ** 20 / 3) ** 0.5)
    return LoadedFrame(frame_id, np.ones((side, side, 3), np.uint8), np.zeros((10, 4), np.float32), None,
                       np.eye(4), np.eye(4), None)


def test_reader_overlaps_loading_with_the_consumer():
    def slow_load(frame_id):
        time.sleep(0.05)
        return fake_frame(frame_id, 1)

    started = time.perf_counter()
    with FrameReader(slow_load, [str(i) for i in range(20)]) as reader:
        for _ in reader:
            time.sleep(0.05)   # the "inference"
    elapsed = time.perf_counter() - started
    assert elapsed < 0.8 * 20 * 0.1   # one after the other would take 2 s


def test_reader_memory_stays_bounded_over_a_thousand_frames():
    tracemalloc.start()
    try:
        seen = 0
        with FrameReader(fake_frame, [f"{i:06d}" for i in range(1000)]) as reader:
            for frame in reader:
                seen += 1
                del frame
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == 1000
    assert peak < 10 * 8 * 2 ** 20   # a few queued frames of 8 MB, never the whole set


def test_reader_error_reaches_the_consumer_after_the_good_frames():
    def load(frame_id):
        if frame_id == "3":
            raise DatasetError("velodyne/3.bin: truncated")
        return fake_frame(frame_id, 1)

    got = []
    with pytest.raises(DatasetError, match="truncated"), FrameReader(load, [str(i) for i in range(6)]) as reader:
        for frame in reader:
            got.append(frame.frame_id)
    assert got == ["0", "1", "2"]


def test_reader_stops_when_the_consumer_stops_early():
    with FrameReader(fake_frame, [str(i) for i in range(100)]) as reader:
        for frame in reader:
            break
    time.sleep(0.1)
    assert not any(thread.name == "frame-reader" and thread.is_alive() for thread in threading.enumerate())
