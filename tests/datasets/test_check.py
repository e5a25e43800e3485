"""`data check` on a prepared folder: frames and objects per infos file, and the files they miss."""
import shutil
from pathlib import Path

import pytest

from v2xfusion_tools.cli import main
from v2xfusion_tools.datasets.check import check_infos
from v2xfusion_tools.datasets.kitti_infos import create_kitti_infos
from v2xfusion_tools.datasets.kitti_to_v2x import convert_kitti_to_v2x
from v2xfusion_tools.datasets.safe_pickle import write_pickle

KITTI = Path(__file__).parent / "fixtures" / "kitti_mini"


@pytest.fixture()
def prepared(tmp_path):
    src = tmp_path / "kitti"
    shutil.copytree(KITTI, src)
    create_kitti_infos(src)
    dst = tmp_path / "kitti-v2x"
    convert_kitti_to_v2x(src, dst)
    return src, dst


def test_mmdet3d_and_v2x_infos_are_counted_per_file(prepared):
    src, dst = prepared
    write_pickle(src / "kitti_dbinfos_train.pkl", {"Car": []})         # mmdet3d's gt database: not infos
    mmdet3d = {r.path.name: r for r in check_infos(src)}
    assert sorted(mmdet3d) == [f"kitti_infos_{s}.pkl" for s in ("test", "train", "trainval", "val")]
    train = mmdet3d["kitti_infos_train.pkl"]
    assert train.kind == "mmdet3d kitti" and train.frames == 1 and train.missing == []
    assert dict(train.objects) == {"Car": 2, "Pedestrian": 1, "Cyclist": 1, "Van": 1}
    v2x = {r.path.name: r for r in check_infos(dst)}
    assert v2x["kitti_infos_trainval.pkl"].kind == "v2x" and v2x["kitti_infos_trainval.pkl"].frames == 2
    assert dict(v2x["kitti_infos_trainval.pkl"].objects) == {"Car": 3, "Pedestrian": 2, "Cyclist": 2}
    line = "kitti_infos_val.pkl: v2x infos, 1 frames (Car 1, Cyclist 1, Pedestrian 1)"
    assert line in v2x["kitti_infos_val.pkl"].format()


def test_files_named_by_infos_but_absent_are_listed(prepared):
    src, dst = prepared
    (src / "training" / "image_2" / "000001.png").unlink()
    missing = {r.path.name: r.missing for r in check_infos(dst)}
    assert missing["kitti_infos_val.pkl"] == [dst / "image" / "000001.png"]
    assert missing["kitti_infos_train.pkl"] == []
    assert {r.path.name: r.missing for r in check_infos(src)}["kitti_infos_val.pkl"] == \
        [src / "training" / "image_2" / "000001.png"]


def test_cli_check_of_a_folder_holding_only_infos(prepared, tmp_path, capsys):
    _, dst = prepared
    only = tmp_path / "only_infos"
    only.mkdir()
    shutil.copy(dst / "kitti_infos_val.pkl", only)
    with pytest.raises(SystemExit) as done:
        main(["data", "check", str(only)])
    assert done.value.code == 1                                          # its image and scan are not there
    assert "kitti_infos_val.pkl: v2x infos, 1 frames" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit) as done:
        main(["data", "check", str(dst)])
    assert done.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())     # rich wraps long lines
    assert "kitti_infos_train.pkl: v2x infos, 1 frames" in printed and "kitti layout, 2 frames" in printed
