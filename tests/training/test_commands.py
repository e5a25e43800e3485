"""`v2xfusion train / eval / vis` on a synthetic KITTI set, and one clear line for a bad config key."""
import json

import pytest
import yaml
from PIL import Image

from v2xfusion_tools.cli import main
from v2xfusion_tools.data import build_dataset

from data.synthetic_sets import tiny_config


def v2xfusion(*args: str) -> int:
    """The CLI's exit code for these arguments, run in this process (click ends with SystemExit)."""
    with pytest.raises(SystemExit) as done:
        main(list(args))
    return done.value.code


@pytest.fixture(scope="module")
def trained(kitti_root, tmp_path_factory):
    """A config file and the checkpoint of one training step through `v2xfusion train`."""
    folder = tmp_path_factory.mktemp("commands")
    config = tiny_config("kitti", "pointpillars_quick")
    config["train"]["val_interval"] = 1
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    run = folder / "run"
    assert v2xfusion("train", str(path), "--run-dir", str(run), "--device", "cpu", "--data-root", str(kitti_root)) == 0
    return path, run / "latest.pth"


def test_train_writes_checkpoints_metrics_and_validation(trained):
    _, checkpoint = trained
    run = checkpoint.parent
    assert {p.name for p in run.iterdir()} >= {"epoch_1.pth", "latest.pth", "resume.pth", "metrics.csv", "config.yaml"}
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,phase,name,value"
    assert any(row.startswith("1,1,val,KITTI/Car_BEV_AP40_moderate_strict,") for row in rows)


def test_eval_prints_r40_and_r11_tables_and_writes_json(trained, kitti_root, tmp_path, capsys):
    config, checkpoint = trained
    out = tmp_path / "ap.json"
    code = v2xfusion("eval", str(config), str(checkpoint), "--data-root", str(kitti_root), "--device", "cpu",
                     "--out", str(out), "--dump-pred", str(tmp_path / "pred"))
    assert code == 0
    printed = " ".join(capsys.readouterr().out.split())     # rich wraps long lines
    assert "KITTI AP40" in printed and "KITTI AP11" in printed and "Car BEV AP40 mod" in printed
    values = json.loads(out.read_text())
    assert "KITTI/Car_BEV_AP40_moderate_strict" in values and "KITTI/Cyclist_3D_AP11_hard_loose" in values
    frame_ids = [meta.frame_id for meta in map(build_dataset(tiny_config("kitti"), "val", False, kitti_root).meta,
                                                 range(2))]
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == sorted(f"{f}.txt" for f in frame_ids)


def test_vis_writes_one_camera_and_one_lidar_picture_per_frame(trained, kitti_root, tmp_path):
    config, checkpoint = trained
    out = tmp_path / "viz"
    for mode in ("pred", "gt"):
        assert v2xfusion("vis", str(config), str(checkpoint), "--data-root", str(kitti_root), "--device", "cpu",
                         "--out-dir", str(out / mode), "--frames", "2", "--mode", mode, "--bbox-score", "0.0") == 0
        cameras = sorted((out / mode / "camera").glob("*.png"))
        lidars = sorted((out / mode / "lidar").glob("*.png"))
        assert len(cameras) == len(lidars) == 2
        assert [p.name for p in cameras] == [p.name for p in lidars]
        with Image.open(cameras[0]) as picture:
            assert picture.size == (1242, 375)       # the native image, boxes drawn over it
        with Image.open(lidars[0]) as picture:
            assert picture.width > 200 and picture.height > 200


def test_a_mistyped_train_key_is_one_line_naming_it(tmp_path, capsys):
    config = tiny_config("kitti", "pointpillars_quick")
    config["train"]["optimizer"] = {"lr": "fast"}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["train", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and "train.optimizer.lr" in errors[0] and "fast" in errors[0], errors
    assert not (tmp_path / "run").exists()
