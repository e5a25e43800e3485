"""PointPillars encoder (v2xfusion_tools/models/lidar/pillar_encoder.py)."""
import numpy as np
import torch

from v2xfusion_tools.models.lidar.pillar_encoder import (PillarFeatureNet, PointPillarsEncoder,
                                                         PointPillarsScatter)

PILLAR = [0.8, 0.8, 8.0]
PC_RANGE = [0.0, -12.8, -5.0, 25.6, 12.8, 3.0]


def _pillars(seed=0, count=6, slots=5):
    gen = torch.Generator().manual_seed(seed)
    coors = torch.stack([torch.zeros(count, dtype=torch.int32), torch.randint(0, 32, (count,), generator=gen,
                         dtype=torch.int32), torch.randint(0, 32, (count,), generator=gen, dtype=torch.int32),
                         torch.zeros(count, dtype=torch.int32)], dim=1)
    num_points = torch.randint(1, slots + 1, (count,), generator=gen, dtype=torch.int32)
    centre = coors[:, 1:3].float() * 0.8 + torch.tensor([0.4, -12.4])
    voxels = torch.zeros(count, slots, 4)
    for v in range(count):
        n = int(num_points[v])
        voxels[v, :n, :2] = centre[v] + 0.8 * (torch.rand(n, 2, generator=gen) - 0.5)
        voxels[v, :n, 2:] = torch.rand(n, 2, generator=gen)
    return voxels, num_points, coors


def test_decorations_are_cluster_and_centre_offsets_with_padding_zeroed():
    pfn = PillarFeatureNet(PILLAR, PC_RANGE, voxel_center_z=False, with_distance=True)
    voxels, num_points, coors = _pillars()
    decorated = pfn.decorate(voxels, num_points, coors).numpy()
    assert decorated.shape == (6, 5, 4 + 3 + 2 + 1)
    for v in range(6):
        n = int(num_points[v])
        pts = voxels[v, :n].numpy()
        centre = np.array([coors[v, 1] * 0.8 + 0.4, coors[v, 2] * 0.8 - 12.4])
        expected = np.concatenate([pts, pts[:, :3] - pts[:, :3].mean(0), pts[:, :2] - centre,
                                   np.linalg.norm(pts[:, :3], axis=1, keepdims=True)], axis=1)
        np.testing.assert_allclose(decorated[v, :n], expected, atol=1e-5)
        assert (decorated[v, n:] == 0).all()


def test_cuda_v2xfusion_layout_has_nine_inputs_and_an_input_norm():
    pfn = PillarFeatureNet(PILLAR, PC_RANGE, in_channels=4, feat_channels=[64], voxel_center_z=False,
                           input_norm=True)
    shapes = {k: tuple(v.shape) for k, v in pfn.state_dict().items()}
    assert shapes["pfn_layers.0.bn.running_mean"] == (9,)
    assert shapes["pfn_layers.0.linear.weight"] == (64, 9)
    assert shapes["pfn_layers.0.norm.weight"] == (64,)
    voxels, num_points, coors = _pillars()
    assert pfn(voxels, num_points, coors).shape == (6, 64)


def test_padded_pillars_with_no_points_stay_finite():
    pfn = PillarFeatureNet(PILLAR, PC_RANGE).eval()
    voxels, num_points, coors = _pillars()
    num_points[2] = 0
    voxels[2] = 0
    assert torch.isfinite(pfn(voxels, num_points, coors)).all()


def test_exported_pfe_runs_other_pillar_counts_like_eager():
    pfn = PillarFeatureNet(PILLAR, PC_RANGE, feat_channels=[32, 64], voxel_center_z=False).eval()
    pillars = torch.export.Dim("V", min=2, max=12000)
    # torch.export refuses data-dependent Python control flow: a dynamic V proves there is none
    exported = torch.export.export(pfn, _pillars(seed=0, count=6),
                                   dynamic_shapes=({0: pillars}, {0: pillars}, {0: pillars}))
    other = _pillars(seed=1, count=11)
    torch.testing.assert_close(exported.module()(*other), pfn(*other))


def test_scatter_writes_each_pillar_at_row_x_column_y():
    scatter = PointPillarsScatter([4, 3], in_channels=2)
    coors = torch.tensor([[0, 1, 2, 0], [1, 3, 0, 0], [0, 0, 0, 0]])
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    canvas = scatter(features, coors, batch_size=2)
    assert canvas.shape == (2, 2, 4, 3)
    assert canvas[0, :, 1, 2].tolist() == [1.0, 2.0] and canvas[1, :, 3, 0].tolist() == [3.0, 4.0]
    assert canvas[0, :, 0, 0].tolist() == [5.0, 6.0] and canvas.abs().sum() == 21.0


def test_encoder_gradients_reach_the_pfn():
    encoder = PointPillarsEncoder(PillarFeatureNet(PILLAR, PC_RANGE), PointPillarsScatter([32, 32]))
    voxels, num_points, coors = _pillars()
    encoder(voxels, num_points, coors, 1).sum().backward()
    assert encoder.pts_voxel_encoder.pfn_layers[0].linear.weight.grad.abs().sum() > 0
