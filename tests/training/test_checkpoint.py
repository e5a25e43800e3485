"""Checkpoints: weights + config that load with weights_only and give identical outputs; exact resume."""
import pytest
import torch

from v2xfusion_perception.errors import V2XError
from v2xfusion_tools.data import build_dataset, collate
from v2xfusion_tools.models import build_model
from v2xfusion_tools.training import checkpoints
from v2xfusion_tools.training.loop import TrainingStep, train
from v2xfusion_tools.training.metrics_log import read_metrics

from data.synthetic_sets import tiny_config


def _quick() -> dict:
    """The quick schedule's model (the fastest to train) on the tiny geometry."""
    return tiny_config("kitti", "pointpillars_quick")


def test_saved_checkpoint_loads_weights_only_and_gives_identical_outputs(kitti_root, tmp_path):
    config = _quick()
    dataset = build_dataset(config, "train", training=False, data_root=kitti_root)
    batch = collate([dataset[0], dataset[1]]).inputs
    torch.manual_seed(0)
    model = build_model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = TrainingStep(model, amp=False)(batch)          # one step: weights and BN statistics move
    losses["loss"].backward()
    optimizer.step()
    path = checkpoints.save_checkpoint(tmp_path, model, config, epoch=1, step=1)

    stored = torch.load(path, map_location="cpu", weights_only=True)
    assert set(stored) == {"state_dict", "config", "meta"}
    assert stored["meta"] == {"epoch": 1, "step": 1, "format": checkpoints.CHECKPOINT_FORMAT}
    assert stored["config"] == config
    assert (tmp_path / "latest.pth").resolve() == path.resolve()

    torch.manual_seed(1)                                    # another initialisation, overwritten by the load
    loaded = build_model(stored["config"])
    checkpoints.load_weights(loaded, tmp_path / "latest.pth")
    model.eval()
    loaded.eval()
    with torch.no_grad():
        expected, actual = model(batch), loaded(batch)
        fresh = build_model(config).eval()(batch)
    for task_expected, task_actual, task_fresh in zip(expected.preds, actual.preds, fresh.preds):
        for name in task_expected:
            assert torch.equal(task_expected[name], task_actual[name]), name
        assert not torch.equal(task_expected["heatmap"], task_fresh["heatmap"])
    for a, b in zip(expected.detections, actual.detections):
        assert torch.equal(a.boxes, b.boxes) and torch.equal(a.scores, b.scores)


def test_weights_of_another_model_config_are_refused(kitti_root, tmp_path):
    config = _quick()
    path = checkpoints.save_checkpoint(tmp_path, build_model(config), config, epoch=1, step=1)
    other = _quick()
    other["model"]["fuser"]["out_channels"] = 96
    other["model"]["decoder"]["backbone"]["in_channels"] = 96
    with pytest.raises(V2XError, match="do not fit the model"):
        checkpoints.load_weights(build_model(other), path)


def _constant_lr(config: dict, epochs: int) -> dict:
    config["train"].update({"epochs": epochs, "optimizer": {"lr": 2e-3},
                            "schedule": {"type": "constant", "warmup_fraction": 0.0}})
    config["data"]["augment"] = {"rotation": [-0.3, 0.3], "flip_y": 0.5}
    return config


def test_resumed_run_ends_where_an_uninterrupted_one_does(kitti_root, tmp_path):
    straight = tmp_path / "straight"
    train(_constant_lr(_quick(), 2), straight, device="cpu", data_root=kitti_root)
    halves = tmp_path / "halves"
    first = train(_constant_lr(_quick(), 1), halves, device="cpu", data_root=kitti_root)
    assert (first.epochs, first.steps) == (1, 1)
    with pytest.raises(V2XError, match="--resume"):
        train(_constant_lr(_quick(), 2), halves, device="cpu", data_root=kitti_root)
    second = train(_constant_lr(_quick(), 2), halves, device="cpu", resume=True, data_root=kitti_root)
    assert (second.epochs, second.steps) == (2, 2)

    expected = torch.load(straight / "epoch_2.pth", weights_only=True)["state_dict"]
    actual = torch.load(halves / "epoch_2.pth", weights_only=True)["state_dict"]
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    resume = torch.load(halves / checkpoints.RESUME, weights_only=True)
    assert resume["checkpoint"] == "epoch_2.pth" and resume["step"] == 2
    losses = read_metrics(halves / "metrics.csv", "train")["loss"]
    assert [step for step, _ in losses] == [1, 2]
    assert losses == read_metrics(straight / "metrics.csv", "train")["loss"]


def test_resume_without_a_saved_state_names_the_file(tmp_path):
    with pytest.raises(V2XError, match="resume.pth"):
        checkpoints.read_resume_state(tmp_path)
