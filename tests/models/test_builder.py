"""build_model: the fixture configs, geometry taken from the presets, and errors naming the key
(v2xfusion_tools/models/builder.py)."""
import copy

import pytest

from v2xfusion_perception.errors import ConfigError, V2XError
from v2xfusion_tools.models import build_model
from v2xfusion_tools.models.lidar.sparse_encoder import SparseEncoder
from .batches import load_fixture


@pytest.mark.parametrize("preset", ["kitti", "v2x"])
def test_fixtures_build_with_the_preset_geometry(preset):
    # design.md §2, typed independently of the presets
    expected = {"kitti": dict(image=(1280, 384), feature=(80, 24), bins=118, bev=(100, 100),
                              sparse=(800, 800, 41), mode="depth"),
                "v2x": dict(image=(1536, 864), feature=(96, 54), bins=90, bev=(128, 128),
                            sparse=(512, 512, 41), mode="height")}[preset]
    model_a = build_model(load_fixture("a", preset, tiny=False))
    vtransform = model_a.encoders["camera"]["vtransform"]
    assert vtransform.image_size == expected["image"] and vtransform.feature_size == expected["feature"]
    assert vtransform.D == expected["bins"] and vtransform.depth_mode == expected["mode"]
    assert vtransform.grid.shape[:2] == expected["bev"] and vtransform.C == 80
    assert model_a.camera_level == 1  # the stride-16 output of GeneralizedLSSFPN
    pfe = model_a.encoders["lidar"]["backbone"].pts_voxel_encoder
    assert pfe.voxel_size.tolist() == pytest.approx([0.8, 0.8, 8.0])
    assert model_a.encoders["lidar"]["voxelize"].max_voxels == 12000
    assert model_a.heads["object"].geometry.bev_size == expected["bev"]
    model_b = build_model(load_fixture("b", preset, tiny=False))
    encoder = model_b.encoders["lidar"]["backbone"]
    assert isinstance(encoder, SparseEncoder) and encoder.sparse_shape == expected["sparse"]
    assert encoder.out_shape[:2] == expected["bev"]


def _error(config) -> str:
    with pytest.raises(ConfigError) as err:
        build_model(config)
    assert isinstance(err.value, V2XError)
    return str(err.value)


@pytest.fixture(scope="module")
def base():
    return load_fixture("a", "v2x")


def test_unknown_key_names_its_full_path_and_the_closest_key(base):
    config = copy.deepcopy(base)
    config["model"]["heads"]["object"]["tasks"][0]["num_clas"] = 3
    message = _error(config)
    assert "unknown key 'model.heads.object.tasks[0].num_clas'" in message
    assert "did you mean 'model.heads.object.tasks[0].num_class'" in message


def test_mistyped_value_names_the_key_and_the_expected_type(base):
    config = copy.deepcopy(base)
    config["model"]["encoders"]["camera"]["backbone"]["depth"] = "34"
    message = _error(config)
    assert message.startswith("model.encoders.camera.backbone.depth: expected one of 18, 34, got str '34'")
    config = copy.deepcopy(base)
    config["model"]["encoders"]["lidar"]["backbone"]["pts_voxel_encoder"]["feat_channels"] = [64, "x"]
    assert "model.encoders.lidar.backbone.pts_voxel_encoder.feat_channels[1]: expected int" in _error(config)


def test_geometry_written_in_the_model_section_is_refused(base):
    config = copy.deepcopy(base)
    config["model"]["encoders"]["camera"]["vtransform"]["dbound"] = [1.0, 60.0, 118]
    assert _error(config) == ("model.encoders.camera.vtransform.dbound: comes from geometry.dbound in the "
                              "preset; remove it here")


def test_missing_key_and_unknown_type_are_named(base):
    config = copy.deepcopy(base)
    del config["model"]["heads"]["object"]["in_channels"]
    assert "missing key 'model.heads.object.in_channels'" in _error(config)
    config = copy.deepcopy(base)
    config["model"]["encoders"]["camera"]["backbone"]["type"] = "ResNet50"
    assert _error(config).startswith("model.encoders.camera.backbone.type: type 'ResNet50'; "
                                     "choose one of ResNet")


@pytest.mark.parametrize("where, value, key", [
    (("fuser", "in_channels"), [80, 32], "model.fuser.in_channels: is [80, 32], must equal"),
    (("heads", "object", "in_channels"), 256, "model.heads.object.in_channels: is 256"),
    (("decoder", "neck", "upsample_strides"), [1, 1], "model.decoder.neck.upsample_strides[1]"),
    (("encoders", "camera", "vtransform", "in_channels"), 128,
     "model.encoders.camera.vtransform.in_channels"),
    (("encoders", "camera", "backbone", "out_indices"), [2, 3], "model.encoders.camera.neck.in_channels"),
])
def test_inconsistent_channels_and_strides_name_the_key(base, where, value, key):
    config = copy.deepcopy(base)
    node = config["model"]
    for name in where[:-1]:
        node = node[name]
    node[where[-1]] = value
    assert key in _error(config)


def test_task_classes_must_be_config_classes(base):
    config = copy.deepcopy(base)
    config["model"]["heads"]["object"]["tasks"] = [{"num_class": 3,
                                                    "class_names": ["Car", "Truck", "Cyclist"]}]
    message = _error(config)
    assert message.startswith("model.heads.object: tasks[0].class_names: 'Truck' is not one of class_names")


def test_sparse_encoder_strides_must_reach_the_bev_size():
    config = load_fixture("b", "v2x")
    # BEVFusion's three stride-2 stages give out_size_factor 8, the v2x preset needs 4
    config["model"]["encoders"]["lidar"]["backbone"]["encoder_channels"] = [[16, 16, 32], [32, 32, 64],
                                                                            [64, 64, 128], [128, 128]]
    config["model"]["encoders"]["lidar"]["backbone"]["encoder_paddings"] = [[0, 0, 1], [0, 0, 1],
                                                                            [0, 0, [1, 1, 0]], [0, 0]]
    message = _error(config)
    assert message.startswith("model.encoders.lidar.backbone.encoder_channels: the encoder's strides give a "
                              "16 x 16 BEV from 128 x 128 voxels; geometry.bev_size is 32 x 32")


def test_geometry_that_disagrees_with_the_camera_stride_is_named(base):
    config = copy.deepcopy(base)
    config["geometry"]["feature_size"] = [9, 4]
    assert _error(config).startswith("geometry.feature_size[0] = 9")


@pytest.mark.parametrize("dbound", [[1.0, 60.0, 0.5], [60.0, 1.0, 118], [0.0, 60.0, 118]])
def test_dbound_must_be_start_end_count(dbound):
    config = load_fixture("a", "kitti")
    config["geometry"]["dbound"] = dbound
    assert _error(config).startswith("geometry.dbound: expected (start, end, count)")
