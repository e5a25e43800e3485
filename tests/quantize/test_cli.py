"""`v2xfusion quantize` (v2xfusion_tools/cli.py) on a synthetic KITTI set: Pipeline A end to end through
the data pipeline, the AP of FP32 and INT8 against the set's labels recorded in the manifest."""
import json

import torch
import yaml

from data.synthetic_sets import tiny_config
from v2xfusion_tools.cli import main as cli_main
from v2xfusion_tools.export.manifest import read_manifest
from v2xfusion_tools.models import build_model


def main(argv: list[str]) -> int:
    """The CLI's exit code (click ends a successful command with SystemExit(0))."""
    try:
        return cli_main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_quantize_pipeline_a_from_a_data_set(kitti_root, tmp_path, capsys):
    config = tiny_config("kitti")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    torch.manual_seed(0)
    torch.save({"state_dict": build_model(config).state_dict()}, tmp_path / "model.pth")
    assert main(["export", str(path), str(tmp_path / "model.pth"), "--out", str(tmp_path / "art")]) == 0
    folder = tmp_path / "art" / "kitti" / "A"
    assert main(["quantize", str(path), str(tmp_path / "model.pth"), "--artifacts", str(folder), "--data-root",
                 str(kitti_root), "--n-calib", "2", "--n-val", "2"]) == 0
    printed = capsys.readouterr().out
    report = json.loads(printed[printed.index("{"):])
    assert report["calibration_frames"] == 2 and report["validation"]["frames"] == 2
    manifest = read_manifest(folder)
    ap = manifest["quantization"]["ap_against_labels"]
    assert set(ap) == {"fp32", "int8"} and "mean BEV AP40 mod" in ap["fp32"]
    assert main(["quantize", str(path), str(tmp_path / "model.pth"), "--artifacts", str(folder), "--data-root",
                 str(kitti_root), "--n-calib", "30", "--n-val", "30"]) == 2
    assert "fewer than --n-calib 30 + --n-val 30" in capsys.readouterr().err
