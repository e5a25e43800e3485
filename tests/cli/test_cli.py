"""The `v2xfusion` command line: help texts, the main job, and one clear line for bad input."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}


def v2xfusion(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the installed entry point's module exactly as the console script does."""
    code = "import sys; from v2xfusion_tools.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd or REPO, env=ENV, timeout=300)


def test_help_lists_every_subcommand_with_its_purpose():
    top = v2xfusion("--help")
    assert top.returncode == 0, top.stderr
    for command in ("data", "demo"):
        assert command in top.stdout
    data = v2xfusion("data", "--help")
    assert data.returncode == 0
    assert "synth" in data.stdout and "check" in data.stdout
    synth = v2xfusion("data", "synth", "--help")
    assert "--preset" in synth.stdout and "--frames" in synth.stdout and "--out" in synth.stdout


def assert_one_clear_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    # one error line, the last thing printed (a progress bar's final state may stand above it)
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


def test_unknown_preset_is_one_line_naming_it(tmp_path):
    result = v2xfusion("data", "synth", "--preset", "nuscenes", "--frames", "1", "--out", str(tmp_path))
    assert_one_clear_line(result, "nuscenes", "kitti", "v2x")


def test_missing_dataset_root_is_one_line_naming_it(tmp_path):
    result = v2xfusion("data", "check", str(tmp_path / "no_such_set"))
    assert_one_clear_line(result, "no_such_set", "not found")


def test_folder_that_is_no_dataset_is_one_line(tmp_path):
    (tmp_path / "random").mkdir()
    result = v2xfusion("data", "check", str(tmp_path / "random"))
    assert_one_clear_line(result, "random", "KITTI", "DAIR")


def test_malformed_preset_file_is_one_line_naming_file_and_key(tmp_path, monkeypatch):
    configs = tmp_path / "configs"
    (configs / "presets").mkdir(parents=True)
    for src in (REPO / "configs").rglob("*.yaml"):
        dst = configs / src.relative_to(REPO / "configs")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(src.read_text())
    preset = configs / "presets" / "kitti.yaml"
    preset.write_text(preset.read_text().replace("max_voxels:", "max_voxel:"))
    code = ("import sys; import v2xfusion_perception.config as c; from pathlib import Path; "
            f"c.CONFIG_ROOT = Path({str(configs)!r}); from v2xfusion_tools.cli import main; sys.exit(main())")
    result = subprocess.run([sys.executable, "-c", code, "data", "synth", "--frames", "1", "--out",
                             str(tmp_path / "o")], capture_output=True, text=True, env=ENV, timeout=120)
    assert_one_clear_line(result, "kitti.yaml", "geometry.max_voxel", "did you mean 'geometry.max_voxels'")


def test_corrupt_frame_is_one_line_naming_the_file(tmp_path):
    out = tmp_path / "set"
    assert v2xfusion("data", "synth", "--frames", "2", "--out", str(out), "-j", "1").returncode == 0
    scan = out / "training" / "velodyne" / "000001.bin"
    scan.write_bytes(scan.read_bytes()[:-3])
    result = v2xfusion("data", "check", str(out))
    assert_one_clear_line(result, "000001.bin", "truncated")


def test_check_reports_missing_files_and_fails(tmp_path):
    out = tmp_path / "set"
    assert v2xfusion("data", "synth", "--frames", "2", "--out", str(out), "-j", "1").returncode == 0
    (out / "training" / "image_2" / "000000.png").unlink()
    result = v2xfusion("data", "check", str(out))
    assert result.returncode == 1
    assert "MISSING 1 files" in result.stdout and "000000.png" in result.stdout


@pytest.mark.parametrize("preset, cloud, image", [("kitti", "training/velodyne/000000.bin", "training/image_2/000000.png"),
                                                  ("v2x", "velodyne/000000.pcd", "image/000000.jpg")])
def test_demo_writes_the_set_and_both_pictures(tmp_path, preset, cloud, image):
    result = v2xfusion("demo", "--preset", preset, "--frames", "3", "--out", str(tmp_path), "--data-only")
    assert result.returncode == 0, result.stderr
    root = tmp_path / preset
    assert (root / "dataset" / cloud).stat().st_size > 1000
    assert (root / "dataset" / image).stat().st_size > 1000
    from PIL import Image

    for name in ("000000_camera.png", "000000_bev.png"):
        picture = np.asarray(Image.open(root / "pictures" / name).convert("RGB"))
        assert picture.shape[0] > 300 and picture.shape[1] > 300
        assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 20, name  # a drawing, not a blank canvas
    assert "frames: 3" in result.stdout
    infos = {"kitti": ["dataset/kitti_infos_train.pkl", "prepared/kitti_infos_val.pkl"],
             "v2x": ["dataset/dair_12hz_infos_train.pkl", "prepared/training/label_2/000000.txt"]}[preset]
    for path in infos:
        assert (root / path).stat().st_size > 0, path
    for name in ("Car", "Pedestrian", "Cyclist"):
        assert name in result.stdout
