"""The assembled BEVFusion of both pipelines (v2xfusion_tools/models/bevfusion.py, stages.py) on tiny
batches built from the fixture configs."""
import copy

import onnxruntime
import pytest
import torch

from v2xfusion_tools.models import FusionOutput, build_model
from v2xfusion_tools.models.camera.bev_pool import bev_pool_v2
from v2xfusion_tools.models.stages import UnifiedStage, export_stages
from .batches import load_fixture, random_batch


def test_full_model_trains_and_evaluates(tiny_config):
    torch.manual_seed(0)
    model = build_model(tiny_config)
    batch = random_batch(tiny_config)
    losses = model(batch)
    assert set(losses) == {"heatmap/task0", "bbox/task0", "loss"}
    assert all(torch.isfinite(v) for v in losses.values())
    losses["loss"].backward()
    first_layers = {
        "camera": model.encoders["camera"]["backbone"].conv1.weight,
        "lidar": next(p for n, p in model.encoders["lidar"]["backbone"].named_parameters() if "weight" in n),
        "fuser": model.fuser[0].weight,
        "decoder": model.decoder["backbone"].blocks[0][0].weight,
        "head": model.heads["object"].shared_conv.conv.weight,
    }
    for name, weight in first_layers.items():
        assert weight.grad is not None and weight.grad.abs().sum() > 0, name
    model.eval()
    with torch.no_grad():
        output = model(batch)
    assert isinstance(output, FusionOutput) and len(output.detections) == 2
    assert output.preds[0]["heatmap"].shape == (2, 3, 32, 32)
    assert output.preds[0]["vel"].shape == (2, 2, 32, 32)
    for detections in output.detections:
        assert detections.boxes.shape[1] == 9 and detections.boxes.shape[0] == detections.scores.shape[0]
        assert (detections.scores > tiny_config["postprocess"]["score_threshold"]).all()


def test_a_few_steps_on_two_frames_cut_the_loss_fourfold():
    torch.manual_seed(0)
    config = load_fixture("a", "v2x")
    model = build_model(config).train()
    batch = random_batch(config, batch=2, seed=5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    initial = None
    for _ in range(5):
        loss = model(batch)["loss"]
        initial = loss.item() if initial is None else initial
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        final = model(batch)["loss"].item()
    assert final < initial / 4, (initial, final)


@pytest.mark.parametrize("pipeline", ["a", "b"])
def test_checkpoint_round_trip_gives_identical_outputs(pipeline, tmp_path):
    config = load_fixture(pipeline, "v2x")
    torch.manual_seed(0)
    model = build_model(config)
    batch = random_batch(config, seed=1)
    model(batch)  # one training forward moves the BatchNorm statistics away from their init
    model.eval()
    torch.save(model.state_dict(), tmp_path / "model.pth")
    torch.manual_seed(1)
    restored = build_model(config).eval()
    restored.load_state_dict(torch.load(tmp_path / "model.pth", weights_only=True))
    with torch.no_grad():
        expected, actual = model(batch), restored(batch)
    for name in expected.preds[0]:
        assert torch.equal(expected.preds[0][name], actual.preds[0][name]), name


def test_bevpool_v1_and_v2_models_give_the_same_camera_bev():
    config = load_fixture("a", "kitti")
    v1_config = copy.deepcopy(config)
    v1_config["model"]["encoders"]["camera"]["vtransform"]["use_bevpool"] = "bevpoolv1"
    v2 = build_model(config).eval()
    v1 = build_model(v1_config).eval()
    v1.load_state_dict(v2.state_dict())
    batch = random_batch(config)
    with torch.no_grad():
        bev_v1, bev_v2 = v1.camera_bev(batch), v2.camera_bev(batch)
    assert bev_v1.abs().sum() > 0
    assert (bev_v1 - bev_v2).abs().max() < 1e-5


def test_height_bins_need_the_ground_plane():
    config = load_fixture("a", "v2x")
    batch = random_batch(config)
    batch.ground_plane = None
    with pytest.raises(ValueError, match="ground_plane"):
        build_model(config)(batch)


def test_pipeline_a_stages_chain_to_the_model_output_and_export():
    config = load_fixture("a", "v2x")
    torch.manual_seed(0)
    model = build_model(config).eval()
    batch = random_batch(config)
    stages = export_stages(model)
    camera, pfe, fuser, head = (stages[n] for n in ("camera.backbone", "lidar_pfe", "fuser", "head"))
    lidar = model.encoders["lidar"]
    with torch.no_grad():
        expected = model(batch).preds[0]
        depth, feature = camera(batch.img)
        geometry = model.encoders["camera"]["vtransform"].prepare_bevpool_v2(model.camera_geometry(batch))
        camera_bev = bev_pool_v2(depth, feature, geometry)  # outside the ONNX: the BEVPool-v2 kernel
        voxels, num_points, coors = lidar["voxelize"](batch.points)
        pillars = pfe(voxels, num_points, coors)
        lidar_bev = lidar["backbone"].pts_middle_encoder(pillars, coors, 2)  # the scatter kernel
        outputs = head(fuser(camera_bev, lidar_bev))
    assert head.output_names == ["heatmap", "reg", "height", "dim", "rot", "vel"]
    for name, value in zip(head.output_names, outputs):
        torch.testing.assert_close(value, expected[name], atol=1e-5, rtol=1e-5)
    # torch.export refuses data-dependent Python control flow: each stage exports and runs like eager
    examples = {"camera.backbone": (batch.img,), "fuser": (camera_bev, lidar_bev),
                "head": (torch.randn(2, 512, 32, 32),)}
    for name, args in examples.items():
        exported = torch.export.export(stages[name], args).module()
        for got, want in zip(_tuple(exported(*args)), _tuple(stages[name](*args))):
            torch.testing.assert_close(got, want)


def test_stages_take_the_model_mode_and_the_pfe_exports_to_onnx_with_dynamic_v(tmp_path):
    config = load_fixture("a", "kitti")
    model = build_model(config).eval()
    stages = export_stages(model)
    assert not any(stage.training for stage in stages.values())
    voxels, num_points, coors = model.encoders["lidar"]["voxelize"](random_batch(config).points)
    names = ["voxels", "num_points", "coors"]
    torch.onnx.export(stages["lidar_pfe"], (voxels, num_points, coors), tmp_path / "lidar_pfe.onnx",
                      dynamo=False, input_names=names, output_names=["pillar_features"],
                      dynamic_axes={name: {0: "V"} for name in names + ["pillar_features"]})
    assert not model.training  # the exporter restored the stage's (the model's) eval mode
    session = onnxruntime.InferenceSession(tmp_path / "lidar_pfe.onnx")
    part = (voxels[:7], num_points[:7], coors[:7])  # another V than the traced one
    (onnx_out,) = session.run(None, {name: t.numpy() for name, t in zip(names, part)})
    with torch.no_grad():
        expected = stages["lidar_pfe"](*part)
    torch.testing.assert_close(torch.from_numpy(onnx_out), expected, atol=1e-5, rtol=1e-5)


def _tuple(value):
    return value if isinstance(value, tuple) else (value,)


def test_pipeline_b_unified_stage_matches_the_model():
    config = load_fixture("b", "kitti")
    torch.manual_seed(0)
    model = build_model(config).eval()
    batch = random_batch(config)
    with torch.no_grad():
        expected = model(batch).preds[0]
        geometry = model.encoders["camera"]["vtransform"].prepare_bevpool_v2(model.camera_geometry(batch))
        features, coors = model.encoders["lidar"]["voxelize"](batch.points)
        outputs = UnifiedStage(model)(batch.img, geometry, features, coors)
    for name, value in zip(model.heads["object"].output_names, outputs):
        torch.testing.assert_close(value, expected[name], atol=1e-5, rtol=1e-5)
    assert set(model.state_dict()) == set(build_model(config).state_dict())  # stages add no parameters
