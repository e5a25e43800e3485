"""BEV pooling v1 / v2 (v2xfusion_tools/models/camera/bev_pool.py) against a numpy loop."""
import numpy as np
import torch

from v2xfusion_tools.models.camera.bev_pool import BevGrid, bev_pool_v1, bev_pool_v2, bev_pool_v2_prepare

GRID = BevGrid.from_bounds([0.0, 6.4, 0.8], [-3.2, 3.2, 0.8], [-2.0, 2.0, 2.0])  # 8 x 8 x 2 cells


def _inputs(seed=0, batch=2, bins=5, height=3, width=4, channels=6):
    gen = torch.Generator().manual_seed(seed)
    depth = torch.rand(batch, bins, height, width, generator=gen).softmax(dim=1)
    feat = torch.randn(batch, height, width, channels, generator=gen)
    # points spread a bit beyond the grid on every side, so some are dropped
    low, high = torch.tensor([-0.8, -4.0, -2.5]), torch.tensor([7.2, 4.0, 2.5])
    geom = low + (high - low) * torch.rand(batch, bins, height, width, 3, generator=gen)
    return depth, feat, geom


def _numpy_pool(depth, feat, geom):
    depth, feat, geom = depth.double().numpy(), feat.double().numpy(), geom.double().numpy()
    nx, ny, nz = GRID.shape
    channels = feat.shape[-1]
    out = np.zeros((depth.shape[0], nz, channels, nx, ny))
    lower = np.array([GRID.xbound[0], GRID.ybound[0], GRID.zbound[0]])
    step = np.array([GRID.xbound[2], GRID.ybound[2], GRID.zbound[2]])
    for b, d, h, w in np.ndindex(*depth.shape):
        ix, iy, iz = np.floor((geom[b, d, h, w] - lower) / step).astype(int)
        if 0 <= ix < nx and 0 <= iy < ny and 0 <= iz < nz:
            out[b, iz, :, ix, iy] += depth[b, d, h, w] * feat[b, h, w]
    return out.reshape(depth.shape[0], nz * channels, nx, ny)


def test_bev_pool_v1_equals_a_numpy_loop():
    depth, feat, geom = _inputs()
    np.testing.assert_allclose(bev_pool_v1(depth, feat, geom, GRID).numpy(), _numpy_pool(depth, feat, geom),
                               atol=1e-5)


def test_bev_pool_v1_and_v2_agree_within_1e_5():
    depth, feat, geom = _inputs(seed=1, bins=20, height=6, width=8, channels=16)
    v1 = bev_pool_v1(depth, feat, geom, GRID)
    v2 = bev_pool_v2(depth, feat, bev_pool_v2_prepare(geom, GRID))
    assert v1.shape == (2, 2 * 16, 8, 8)
    assert v1.abs().sum() > 0
    assert (v1 - v2).abs().max() < 1e-5


def test_bev_pool_v2_ranks_are_sorted_runs_of_kept_points():
    depth, feat, geom = _inputs(seed=2)
    prepared = bev_pool_v2_prepare(geom, GRID)
    kept = GRID.cells(geom)[1].sum()
    assert prepared.ranks_bev.numel() == kept < geom[..., 0].numel()  # some points fell outside
    assert (prepared.ranks_bev[1:] >= prepared.ranks_bev[:-1]).all()
    assert prepared.interval_lengths.sum() == kept
    starts = prepared.ranks_bev[prepared.interval_starts]
    assert (starts[1:] > starts[:-1]).all()  # one interval per occupied cell
    # a depth rank (b, d, h, w) and its feature rank (b, h, w) name the same pixel
    b_d, hw = prepared.ranks_depth // 12, prepared.ranks_depth % 12
    assert torch.equal(prepared.ranks_feat, (b_d // 5) * 12 + hw)


def test_bev_pool_v1_and_v2_gradients_agree():
    depth, feat, geom = _inputs(seed=3)
    grads = []
    for pool in ("v1", "v2"):
        d, f = depth.clone().requires_grad_(), feat.clone().requires_grad_()
        if pool == "v1":
            out = bev_pool_v1(d, f, geom, GRID)
        else:
            out = bev_pool_v2(d, f, bev_pool_v2_prepare(geom, GRID))
        (out * torch.arange(out.numel()).view_as(out).sin()).sum().backward()
        grads.append((d.grad, f.grad))
    assert grads[0][0].abs().sum() > 0
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads[0][1], grads[1][1], atol=1e-5, rtol=1e-5)


def test_points_just_below_a_lower_bound_are_outside():
    cells, kept = GRID.cells(torch.tensor([[-0.01, 0.0, 0.0], [0.0, -3.2, -2.0], [6.39, 3.19, 1.99],
                                           [6.4, 0.0, 0.0]]))
    assert kept.tolist() == [False, True, True, False]
    assert cells[1].tolist() == [0, 0, 0] and cells[2].tolist() == [7, 7, 1]
