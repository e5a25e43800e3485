"""The runtime installs on a robot without torch: its modules import, and a pipeline runs a frame, in a
process where torch (and the torch-based tools package) cannot be imported."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BLOCKED = ("torch", "v2xfusion_tools", "spconv", "nncf")

SCRIPT = r"""
import importlib.abc, json, sys
BLOCKED = {blocked!r}

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not importable in this test")
        return None

sys.meta_path.insert(0, Refuse())
import numpy as np
from PIL import Image
import v2xfusion_perception.manifest, v2xfusion_perception.image_transform, v2xfusion_perception.camera_geometry
import v2xfusion_perception.head_decode, v2xfusion_perception.pipeline_a, v2xfusion_perception.pipeline_b
from v2xfusion_perception.frame import Calibration
from v2xfusion_perception.pipelines import open_pipeline

pipeline = open_pipeline({artifacts!r})
calib = {{line.split(":")[0]: np.array(line.split(":")[1].split(), float) for line in open({calib!r}) if ":" in line}}
lidar2cam = np.eye(4)
lidar2cam[:3, :4] = calib["Tr_velo_to_cam"].reshape(3, 4)
rect = np.eye(4)
rect[:3, :3] = calib["R0_rect"].reshape(3, 3)
image = np.asarray(Image.open({image!r}).convert("RGB"))
points = np.fromfile({velodyne!r}, dtype="<f4").reshape(-1, 4)
found = pipeline.infer(image, points, Calibration(calib["P2"].reshape(3, 4)[:, :3], rect @ lidar2cam,
                                                  (image.shape[1], image.shape[0])))
loaded = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
print(json.dumps({{"detections": len(found), "loaded": loaded}}))
"""


def test_runtime_runs_a_frame_with_torch_unimportable(reference_a):
    training = reference_a.data / "training"
    script = SCRIPT.format(blocked=BLOCKED, artifacts=str(reference_a.artifacts),
                           calib=str(training / "calib" / "000000.txt"), image=str(training / "image_2" / "000000.png"),
                           velodyne=str(training / "velodyne" / "000000.bin"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    expected = len(reference_a.detections("000000")[2])
    assert result["detections"] == expected > 0


def test_the_block_really_blocks_torch():
    script = SCRIPT.split("import numpy as np")[0].format(blocked=BLOCKED) + "import torch\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "torch is not importable in this test" in done.stderr
