"""V2XDataset and its loader on synthetic KITTI / DAIR-V2X-I sets made by the data-preparation commands.

The reference for what a frame holds is datasets/raw.py, which reads the raw layouts (label_2 + calib,
DAIR JSON + PCD) without the infos: the dataset must agree with it after the infos round trip.
"""
import shutil

import numpy as np
import pytest
import torch

from v2xfusion_perception import boxes as box_ops
from v2xfusion_perception.errors import ConfigError, DatasetError
from v2xfusion_tools.data import GlobalBatchSampler, V2XDataset, batches, build_dataset, collate, make_loader
from v2xfusion_tools.data.settings import data_settings
from v2xfusion_tools.datasets.raw import open_raw_dataset
from v2xfusion_tools.datasets.v2x_infos import load_v2x_infos
from v2xfusion_tools.models.camera.frustum import frustum_points_depth

from .synthetic_sets import tiny_config


def _in_range(points, pc_range):
    return points[np.all((points[:, :3] >= pc_range[:3]) & (points[:, :3] < pc_range[3:]), axis=1)]


def test_kitti_sample_matches_the_raw_frame(kitti_root):
    config = tiny_config("kitti")
    config["data"]["min_lidar_points"] = 0
    dataset = build_dataset(config, "train", training=False, data_root=kitti_root)
    raw = open_raw_dataset(kitti_root.parent / "raw")
    pc_range = np.array(config["geometry"]["pc_range"])
    for index in range(len(dataset)):
        sample = dataset[index]
        frame = raw.read(sample.meta.frame_id)
        assert np.array_equal(sample.points, _in_range(frame.points, pc_range))
        order = np.lexsort(sample.gt_boxes.T[:2])
        expected = frame.boxes[np.lexsort(frame.boxes.T[:2])]
        assert np.allclose(sample.gt_boxes[order], expected, atol=1e-4)
        names = [config["class_names"][label] for label in sample.gt_labels[order]]
        assert names == [frame.labels[i] for i in np.lexsort(frame.boxes.T[:2])]
        assert np.allclose(sample.lidar2camera, frame.lidar2cam, atol=1e-6)
        assert sample.img.shape == (3, 64, 128) and sample.img.dtype == np.float32
        assert np.allclose(sample.lidar_aug_matrix, np.eye(4))


def test_models_frustum_sends_a_projected_box_centre_back_to_it(kitti_root):
    """The img_aug_matrix means to the models what the data pipeline means by it."""
    config = tiny_config("kitti")
    dataset = build_dataset(config, "train", training=False, data_root=kitti_root)
    sample = dataset[0]
    centres = sample.gt_boxes[:, :3].astype(np.float64)
    uv, depth = box_ops.project_points(centres, sample.meta.lidar2img)      # native pixels
    pixels = np.stack([uv[:, 0], uv[:, 1], depth, np.ones_like(depth)])
    network = (sample.img_aug_matrix.astype(np.float64) @ pixels)[:2].T
    matrices = {name: torch.from_numpy(getattr(sample, name)).double()[None]
                for name in ("camera_intrinsics", "lidar2camera", "img_aug_matrix", "lidar_aug_matrix")}
    camera2lidar = torch.linalg.inv(matrices["lidar2camera"])
    for (u, v), d, centre in zip(network, depth, centres):
        back = frustum_points_depth(torch.tensor([[[u, v]]], dtype=torch.float64),
                                    torch.tensor([d], dtype=torch.float64), camera2lidar,
                                    matrices["camera_intrinsics"], matrices["img_aug_matrix"],
                                    matrices["lidar_aug_matrix"])
        assert np.allclose(back[0, 0, 0, 0].numpy(), centre, atol=1e-6)


def test_augmented_sample_keeps_the_points_of_every_box(kitti_root):
    config = tiny_config("kitti")
    config["data"]["augment"] = {"rotation": [-0.5, 0.5], "scale": [0.9, 1.1], "flip_y": 0.5}
    dataset = build_dataset(config, "train", training=True, data_root=kitti_root)
    pc_range = np.array(config["geometry"]["pc_range"])
    boxes, _ = dataset.ground_truth(0)
    raw_points = dataset.read(0).points
    checked = 0
    for epoch in range(3):
        dataset.set_epoch(epoch)
        sample = dataset[0]
        assert not np.allclose(sample.lidar_aug_matrix, np.eye(4))
        moved = box_ops.transform_points(boxes[:, :3], sample.lidar_aug_matrix.astype(np.float64))
        for box in sample.gt_boxes.astype(np.float64):
            corners = box_ops.box_corners(box[None])[0]
            if not np.all((corners[:, :2] >= pc_range[:2]) & (corners[:, :2] < pc_range[3:5])):
                continue   # partly outside pc_range: its points there are filtered with the rest
            match = np.argmin(np.linalg.norm(moved - box[:3], axis=1))
            count_before = box_ops.points_in_boxes(raw_points, boxes[match:match + 1]).sum()
            assert count_before > 0
            assert box_ops.points_in_boxes(sample.points, box[None]).sum() == count_before
            checked += 1
    assert checked >= 3


def test_augmentation_depends_on_seed_epoch_and_frame_only(kitti_root):
    config = tiny_config("kitti")
    config["data"]["augment"] = {"rotation": [-0.5, 0.5], "scale": [0.9, 1.1], "flip_y": 0.5}
    first = build_dataset(config, "train", training=True, data_root=kitti_root)
    second = build_dataset(config, "train", training=True, data_root=kitti_root)
    second.set_epoch(0)
    assert np.array_equal(first[1].lidar_aug_matrix, second[1].lidar_aug_matrix)
    assert np.array_equal(first[1].points, second[1].points)
    second.set_epoch(1)
    assert not np.array_equal(first[1].lidar_aug_matrix, second[1].lidar_aug_matrix)
    assert not np.array_equal(first[0].lidar_aug_matrix, first[1].lidar_aug_matrix)


def test_heading_mod_pi_folds_training_targets_only(kitti_root):
    config = tiny_config("kitti")
    config["data"]["heading_mod_pi"] = True
    dataset = build_dataset(config, "train", training=False, data_root=kitti_root)
    boxes, _ = dataset.ground_truth(0)
    sample = dataset[0]
    assert np.any(np.abs(boxes[:, 6]) > np.pi / 2)           # the set has objects facing backwards
    assert np.all(np.abs(sample.gt_boxes[:, 6]) <= np.pi / 2 + 1e-6)
    folded = np.mod(boxes[:, 6] + np.pi / 2, np.pi) - np.pi / 2
    assert np.allclose(np.sort(sample.gt_boxes[:, 6]), np.sort(folded), atol=1e-6)


def test_collated_batch_stacks_images_and_matrices(kitti_root):
    config = tiny_config("kitti")
    dataset = build_dataset(config, "val", training=False, data_root=kitti_root)
    batch = collate([dataset[0], dataset[1]])
    inputs = batch.inputs
    assert inputs.img.shape == (2, 3, 64, 128)
    assert inputs.lidar2camera.shape == inputs.img_aug_matrix.shape == (2, 4, 4)
    assert inputs.ground_plane.shape == (2, 4)
    assert [p.shape[1] for p in inputs.points] == [4, 4]
    assert [m.index for m in batch.metas] == [0, 1]
    assert all(labels.dtype == torch.int64 for labels in inputs.gt_labels)


def test_v2x_sample_matches_the_raw_dair_frame(v2x_root):
    config = tiny_config("v2x")
    config["data"]["min_lidar_points"] = 0
    dataset = build_dataset(config, "train", training=False, data_root=v2x_root)
    raw = open_raw_dataset(v2x_root)
    pc_range = np.array(config["geometry"]["pc_range"])
    sample = dataset[0]
    frame = raw.read(sample.meta.frame_id)
    assert np.array_equal(sample.points, _in_range(frame.points, pc_range))
    assert 0.0 <= sample.points[:, 3].min() and sample.points[:, 3].max() <= 1.0   # PCD 0-255 over 255
    assert sample.img.shape == (3, 64, 128)
    # heights negative above the plane; the infos' denorm is the LiDAR z = 0 plane (BEVHeight's get_denorm)
    assert np.allclose(sample.ground_plane, [0.0, 0.0, -1.0, 0.0], atol=1e-5)


def test_missing_point_cloud_is_one_error_naming_the_file(kitti_root):
    config = tiny_config("kitti")
    settings = data_settings(config)
    infos = load_v2x_infos(kitti_root / "kitti_infos_train.pkl")
    infos[1]["lidar_infos"]["LIDAR_TOP"]["filename"] = "velodyne/999999.bin"
    dataset = V2XDataset(infos, kitti_root, "infos.pkl", config["class_names"], config["geometry"], settings, False)
    loader = make_loader(dataset, GlobalBatchSampler(len(dataset), 1, shuffle=False, drop_last=False), workers=1)
    with pytest.raises(DatasetError) as error:
        list(batches(loader))
    message = str(error.value)
    assert "999999.bin" in message and "\n" not in message


def test_corrupt_image_is_an_error_naming_the_file(kitti_root, tmp_path):
    config = tiny_config("kitti")
    infos = load_v2x_infos(kitti_root / "kitti_infos_train.pkl")
    (tmp_path / "velodyne").symlink_to((kitti_root / "velodyne").resolve())
    (tmp_path / "image").mkdir()
    name = infos[0]["cam_infos"]["CAM_FRONT"]["filename"]
    original = (kitti_root / name).read_bytes()
    (tmp_path / name).write_bytes(original[:len(original) // 3])
    dataset = V2XDataset(infos[:1], tmp_path, "infos.pkl", config["class_names"], config["geometry"],
                         data_settings(config), False)
    failure = dataset[0]
    assert str(tmp_path / name) in failure.message and "image" in failure.message
    shutil.rmtree(tmp_path / "image")
    assert "image file not found" in dataset[0].message


def test_missing_infos_and_unknown_keys_name_what_is_wrong(kitti_root):
    config = tiny_config("kitti")
    with pytest.raises(DatasetError, match="kitti_infos_train.pkl"):
        build_dataset(config, "train", training=True, data_root=kitti_root / "nowhere")
    with pytest.raises(ConfigError, match="no split 'test'"):
        build_dataset(config, "test", training=False, data_root=kitti_root)
    config["data"]["augment"] = {"rotaton": [0.0, 1.0]}
    with pytest.raises(ConfigError, match=r"data\.augment\.rotaton"):
        data_settings(config)
    config["data"]["augment"] = {"scale": [1.1, 0.9]}
    with pytest.raises(ConfigError, match=r"data\.augment\.scale"):
        data_settings(config)


@pytest.mark.parametrize("shuffle", [False, True])
def test_global_batches_are_cut_the_same_for_any_process_count(shuffle):
    single = GlobalBatchSampler(10, 2, accumulate=2, shuffle=shuffle, seed=3)
    ranks = [GlobalBatchSampler(10, 2, world_size=2, rank=r, shuffle=shuffle, seed=3) for r in range(2)]
    steps = list(single)
    assert len(steps) == 4 and len(single) == 4 and single.steps_per_epoch == 2   # 10 frames: 2 steps of 4
    per_rank = [list(r) for r in ranks]
    for step in range(2):
        assert per_rank[0][step] == steps[2 * step] and per_rank[1][step] == steps[2 * step + 1]
    used = sorted(i for batch in steps for i in batch)
    assert len(set(used)) == 8 and set(used) <= set(range(10))
    single.set_epoch(1)
    assert (list(single) != steps) == shuffle
