"""configs/ inheritance and strict validation (v2xfusion_perception/config.py)."""
from pathlib import Path

import pytest
import yaml

from v2xfusion_perception.config import CONFIG_ROOT, PRESETS, load_config, preset_config_path
from v2xfusion_perception.errors import ConfigError


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def preset_copy(tmp_path):
    """A private copy of the real configs/ tree, so tests may add children next to the presets."""
    for src in CONFIG_ROOT.rglob("*.yaml"):
        dst = tmp_path / "configs" / src.relative_to(CONFIG_ROOT)
        write(dst, src.read_text())
    return tmp_path / "configs"


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_load_and_carry_design_geometry(preset):
    cfg = load_config(preset_config_path(preset))
    geo = cfg["geometry"]
    expected = {  # design.md §2 table, typed independently of the YAML
        "kitti": dict(image_size=[1280, 384], feature_size=[80, 24], bev_size=[100, 100],
                      pc_range=[0, -40, -5, 80, 40, 3], post_center_range=[0, -45, -5, 85, 45, 3],
                      out_size_factor=8, voxel_xy=0.1),
        "v2x": dict(image_size=[1536, 864], feature_size=[96, 54], bev_size=[128, 128],
                    pc_range=[0, -51.2, -5, 102.4, 51.2, 3], post_center_range=[0, -51.2, -5, 102.4, 51.2, 3],
                    out_size_factor=4, voxel_xy=0.2),
    }[preset]
    assert cfg["preset"] == preset
    assert cfg["class_names"] == ["Car", "Pedestrian", "Cyclist"]
    for key in ("image_size", "feature_size", "bev_size", "pc_range", "post_center_range", "out_size_factor"):
        assert geo[key] == pytest.approx(expected[key]), key
    assert geo["voxel_size"][:2] == pytest.approx([expected["voxel_xy"]] * 2)
    assert cfg["kernels_backend"] == "host"  # inherited from base.yaml
    assert "dataset_root" in cfg and "dataset_kitti_root" in cfg


def test_child_overrides_one_key_and_inherits_the_rest(preset_copy):
    child = write(preset_copy / "kitti" / "child.yaml",
                  {"_base_": "../presets/kitti.yaml", "geometry": {"max_voxels": 7000}, "seed": 3})
    cfg = load_config(child)
    base = load_config(preset_copy / "presets" / "kitti.yaml")
    assert cfg["geometry"]["max_voxels"] == 7000
    assert cfg["seed"] == 3
    assert {k: v for k, v in cfg["geometry"].items() if k != "max_voxels"} == \
        {k: v for k, v in base["geometry"].items() if k != "max_voxels"}


def test_lists_replace_instead_of_merging(preset_copy):
    child = write(preset_copy / "c.yaml", {"_base_": "presets/kitti.yaml", "class_names": ["Car"],
                                           "postprocess": {"circle_radius": [4.0]}})
    assert load_config(child)["class_names"] == ["Car"]


def test_multiple_bases_merge_in_order(preset_copy):
    write(preset_copy / "extra.yaml", {"seed": 11, "kernels_backend": "auto"})
    child = write(preset_copy / "c.yaml", {"_base_": ["presets/v2x.yaml", "extra.yaml"]})
    cfg = load_config(child)
    assert (cfg["seed"], cfg["kernels_backend"], cfg["preset"]) == (11, "auto", "v2x")


def test_unknown_top_level_key_names_file_key_and_hint(preset_copy):
    child = write(preset_copy / "typo.yaml", {"_base_": "presets/kitti.yaml", "dataset_roots": "x"})
    with pytest.raises(ConfigError) as err:
        load_config(child)
    msg = str(err.value)
    assert str(child.resolve()) in msg and "'dataset_roots'" in msg and "dataset_root" in msg


def test_mistyped_nested_key_is_reported_with_its_path(preset_copy):
    child = write(preset_copy / "typo.yaml", {"_base_": "presets/kitti.yaml", "geometry": {"pc_rang": [0] * 6}})
    with pytest.raises(ConfigError, match=r"typo\.yaml: unknown key 'geometry\.pc_rang' \(did you mean 'geometry\.pc_range'\?\)"):
        load_config(child)


def test_error_in_a_base_file_names_the_base_not_the_child(preset_copy):
    write(preset_copy / "bad_base.yaml", {"_base_": "presets/kitti.yaml", "postprocess": {"nms_tpye": "rotate"}})
    child = write(preset_copy / "child.yaml", {"_base_": "bad_base.yaml", "seed": 1})
    with pytest.raises(ConfigError, match=r"bad_base\.yaml: unknown key 'postprocess\.nms_tpye'"):
        load_config(child)


@pytest.mark.parametrize("override, pattern", [
    ({"geometry": {"max_voxels": "many"}}, r"'geometry\.max_voxels': expected int, got str"),
    ({"geometry": {"pc_range": [0, 1, 2]}}, r"'geometry\.pc_range': expected 6 values, got 3"),
    ({"preset": "nuscenes"}, r"'preset': expected one of kitti, v2x"),
    ({"postprocess": {"nms_type": "linear"}}, r"'postprocess\.nms_type': expected one of rotate, circle"),
    ({"seed": True}, r"'seed': expected int, got bool"),
    ({"geometry": {"bev_size": [100, 99]}}, r"geometry\.bev_size\[1\] = 99 disagrees"),
    ({"geometry": "flat"}, r"'geometry' must be a mapping"),
])
def test_wrong_values_are_errors(preset_copy, override, pattern):
    child = write(preset_copy / "bad.yaml", {"_base_": "presets/kitti.yaml", **override})
    with pytest.raises(ConfigError, match=pattern):
        load_config(child)


def test_integers_are_accepted_for_floats(preset_copy):
    child = write(preset_copy / "ints.yaml", {"_base_": "presets/kitti.yaml", "postprocess": {"score_threshold": 1}})
    assert load_config(child)["postprocess"]["score_threshold"] == 1


def test_missing_required_key_is_reported(preset_copy):
    bare = write(preset_copy / "bare.yaml", {"_base_": "base.yaml", "preset": "kitti"})
    with pytest.raises(ConfigError, match=r"missing key 'dataset_root'"):
        load_config(bare)


def test_missing_file_malformed_yaml_and_cycles(preset_copy, tmp_path):
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: config file not found"):
        load_config(tmp_path / "nowhere.yaml")
    broken = write(preset_copy / "broken.yaml", "geometry: [1, 2\nseed: 3\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: line \d+ malformed YAML"):
        load_config(broken)
    write(preset_copy / "a.yaml", {"_base_": "b.yaml"})
    write(preset_copy / "b.yaml", {"_base_": "a.yaml"})
    with pytest.raises(ConfigError, match="inheritance cycle"):
        load_config(preset_copy / "a.yaml")
    missing_base = write(preset_copy / "m.yaml", {"_base_": "gone.yaml"})
    with pytest.raises(ConfigError, match=r"gone\.yaml: config file not found \(named in .*m\.yaml\)"):
        load_config(missing_base)


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown preset 'nusc': choose one of kitti, v2x"):
        preset_config_path("nusc")


def test_loading_does_not_share_state_between_calls(preset_copy):
    a = load_config(preset_copy / "presets" / "kitti.yaml")
    a["geometry"]["pc_range"][0] = 99.0
    b = load_config(preset_copy / "presets" / "kitti.yaml")
    assert b["geometry"]["pc_range"][0] == 0.0
