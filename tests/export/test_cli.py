"""The `export` and `convert-checkpoint` subcommands (v2xfusion_tools/cli.py): files written, messages,
one-line errors."""
import json

import torch
import yaml

from models.batches import MODEL_CONFIGS, load_fixture, tiny_geometry
from v2xfusion_perception.config import CONFIG_ROOT, load_config
from v2xfusion_tools.cli import main as cli_main
from v2xfusion_tools.export.calibration import write_calibration_file
from v2xfusion_tools.models import build_model

from .trained import batch_camera_calibration


def main(argv: list[str]) -> int:
    """The CLI's exit code (click ends a successful command with SystemExit(0))."""
    try:
        return cli_main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _config_file(tmp_path, pipeline: str, preset: str = "kitti"):
    """The fixture config of tests/models as a file (the tiny geometry over the repository's config)."""
    base = CONFIG_ROOT / preset / f"{MODEL_CONFIGS[pipeline]}.yaml"
    path = tmp_path / f"{pipeline}-{preset}.yaml"
    path.write_text(yaml.safe_dump({"_base_": str(base),
                                    "geometry": tiny_geometry(load_config(base)["geometry"])}))
    return path


def test_export_writes_pipeline_a_artifacts_and_geometry_only_writes_the_guides_files(tmp_path, capsys):
    config_path = _config_file(tmp_path, "a")
    config = load_config(config_path)
    torch.manual_seed(0)
    torch.save({"state_dict": build_model(config).state_dict()}, tmp_path / "latest.pth")
    assert main(["export", str(config_path), str(tmp_path / "latest.pth"), "--out", str(tmp_path / "art"),
                 "--fixed-v", "2000"]) == 0
    manifest = json.loads((tmp_path / "art" / "kitti" / "A" / "manifest.json").read_text())
    assert "lidar_pfe_v2000.onnx" in manifest["files"] and manifest["source"]["checkpoint_sha256"]
    assert "manifest: " in capsys.readouterr().out
    b_config = _config_file(tmp_path, "b")
    write_calibration_file(tmp_path / "calib.json", batch_camera_calibration(load_fixture("b", "kitti")))
    assert main(["export", str(b_config), "--geometry-only", "--calib", str(tmp_path / "calib.json"),
                 "--out", str(tmp_path / "geometry")]) == 0
    assert {p.name for p in (tmp_path / "geometry").iterdir()} == {"indices.bin", "intervals.bin", "geometry.pth",
                                                                  "calibration.json"}


def test_export_errors_are_one_line_naming_the_input(tmp_path, capsys):
    b_config = _config_file(tmp_path, "b")
    assert main(["export", str(b_config), "--geometry-only", "--calib", str(tmp_path / "none.json"),
                 "--out", str(tmp_path / "g")]) == 2
    assert "none.json: calibration file not found" in capsys.readouterr().err
    assert main(["export", str(b_config), "--out", str(tmp_path / "g")]) == 2
    assert "CHECKPOINT" in capsys.readouterr().err
    torch.save({"state_dict": {"fuser.0.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    assert main(["export", str(_config_file(tmp_path, "a")), str(tmp_path / "other.pth")]) == 2
    err = capsys.readouterr().err
    assert "other.pth" in err and "Traceback" not in err


def test_convert_checkpoint_lists_what_did_not_land(tmp_path, capsys):
    config_path = _config_file(tmp_path, "a")
    weights = {f"module.{k}": v for k, v in build_model(load_config(config_path)).state_dict().items()}
    weights["module.encoders.radar.backbone.weight"] = torch.zeros(3)
    torch.save(weights, tmp_path / "published.pth")
    assert main(["convert-checkpoint", str(config_path), str(tmp_path / "published.pth"),
                 "--out", str(tmp_path / "art")]) == 0
    out = capsys.readouterr().out
    assert "unexpected: encoders.radar.backbone.weight" in out and "prefix 'module.' stripped" in out
    assert (tmp_path / "art" / "kitti" / "A" / "head_fp16.xml").is_file()
