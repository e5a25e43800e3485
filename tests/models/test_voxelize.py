"""Hard and dynamic voxelization (v2xfusion_tools/models/lidar/voxelize.py) against Python loops."""
import numpy as np
import torch

from v2xfusion_tools.models.lidar.voxelize import (DynamicVoxelizer, PillarVoxelizer, voxelize_dynamic,
                                                   voxelize_hard)

PC_RANGE = [0.0, -2.0, -1.0, 4.0, 2.0, 1.0]


def _cloud(seed=0, n=400):
    gen = torch.Generator().manual_seed(seed)
    xyz = torch.tensor([-0.5, -2.5, -1.2]) + torch.tensor([5.0, 5.0, 2.4]) * torch.rand(n, 3, generator=gen)
    return torch.cat([xyz, torch.rand(n, 1, generator=gen)], dim=1)


def _reference_hard(points, voxel_size, max_points, max_voxels):
    """mmcv's rules, one point at a time."""
    lower, size = np.array(PC_RANGE[:3]), np.array(voxel_size)
    grid = np.round((np.array(PC_RANGE[3:]) - lower) / size).astype(int)
    voxels, coors, counts, index = [], [], [], {}
    for p in points.numpy():
        cell = tuple(np.floor((p[:3] - lower) / size).astype(int))
        if not all(0 <= c < g for c, g in zip(cell, grid)):
            continue
        if cell not in index:
            if len(voxels) == max_voxels:
                continue
            index[cell] = len(voxels)
            voxels.append(np.zeros((max_points, 4), np.float32))
            coors.append(cell)
            counts.append(0)
        v = index[cell]
        if counts[v] < max_points:
            voxels[v][counts[v]] = p
            counts[v] += 1
    return np.stack(voxels), np.array(coors), np.array(counts)


def test_hard_voxelization_follows_mmcv_rules():
    points = _cloud()
    voxel_size = [1.0, 1.0, 2.0]
    out = voxelize_hard(points, PC_RANGE, voxel_size, max_points=5, max_voxels=10)
    voxels, coors, counts = _reference_hard(points, voxel_size, 5, 10)
    assert out.voxels.shape == (10, 5, 4)
    np.testing.assert_array_equal(out.coors.numpy(), coors)
    np.testing.assert_array_equal(out.num_points.numpy(), counts)
    np.testing.assert_array_equal(out.voxels.numpy(), voxels)


def test_hard_voxelization_without_caps_keeps_every_point_inside():
    points = _cloud(seed=1)
    out = voxelize_hard(points, PC_RANGE, [0.5, 0.5, 2.0], max_points=400, max_voxels=1000)
    voxels, coors, counts = _reference_hard(points, [0.5, 0.5, 2.0], 400, 1000)
    assert out.num_points.sum() == counts.sum() < len(points)
    np.testing.assert_array_equal(out.coors.numpy(), coors)


def test_dynamic_voxelization_averages_each_voxel():
    points = _cloud(seed=2)
    voxel_size = [0.5, 0.5, 0.5]
    out = voxelize_dynamic(points, PC_RANGE, voxel_size)
    lower = np.array(PC_RANGE[:3])
    groups = {}
    for p in points.numpy():
        cell = np.floor((p[:3] - lower) / np.array(voxel_size)).astype(int)
        if (cell >= 0).all() and (cell < [8, 8, 4]).all():
            groups.setdefault((cell[2], cell[1], cell[0]), []).append(p)
    assert out.coors.shape[0] == len(groups)
    for coor, feature in zip(out.coors.numpy(), out.features.numpy()):
        np.testing.assert_allclose(feature, np.mean(groups[tuple(coor)], axis=0), rtol=1e-5, atol=1e-6)
    keys = [tuple(c) for c in out.coors.numpy()]
    assert keys == sorted(keys)  # (z, y, x) order


def test_batch_voxelizers_prefix_the_frame_index():
    clouds = [_cloud(seed=3), _cloud(seed=4)]
    voxels, num_points, coors = PillarVoxelizer(PC_RANGE, [1.0, 1.0, 2.0], 8, 100)(clouds)
    first = voxelize_hard(clouds[0], PC_RANGE, [1.0, 1.0, 2.0], 8, 100).coors.shape[0]
    assert coors.shape == (voxels.shape[0], 4) and num_points.shape == (voxels.shape[0],)
    assert (coors[:first, 0] == 0).all() and (coors[first:, 0] == 1).all()
    features, coors = DynamicVoxelizer(PC_RANGE, [0.5, 0.5, 0.5])(clouds)
    assert set(coors[:, 0].tolist()) == {0, 1} and features.shape == (coors.shape[0], 4)
