"""Sparse convolution (rulebooks, gather-GEMM-scatter, SparseToDense) against spconv 2.x on CPU,
a dense PyTorch conv3d and a dictionary-based numpy rulebook."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import spconv.pytorch as spconv
import torch


SHAPE = (21, 40, 36)  # (D, H, W): z, y, x


def random_sites(rng, n, shape=SHAPE, batch=1):
    """n distinct (b, z, y, x) sites, in random order."""
    volume = int(np.prod(shape))
    flat = rng.choice(batch * volume, size=n, replace=False)
    b, rest = np.divmod(flat, volume)
    z, rest = np.divmod(rest, shape[1] * shape[2])
    y, x = np.divmod(rest, shape[2])
    return np.stack([b, z, y, x], axis=1).astype(np.int32)


def reference_rulebook(coors, shape, kernel, stride, padding, subm):
    """Output sites and neighbour table from Python dictionaries (spconv's definition)."""
    kernel, stride, padding = (np.broadcast_to(v, 3) for v in (kernel, stride, padding))
    where = {tuple(c): i for i, c in reversed(list(enumerate(coors.tolist())))}
    offsets = list(itertools.product(*(range(k) for k in kernel)))
    if subm:
        out = coors
        out_shape = shape
    else:
        out_shape = tuple((s + 2 * p - (k - 1) - 1) // st + 1 for s, p, k, st in zip(shape, padding, kernel, stride))
        sites = set()
        for b, *p in coors.tolist():
            for k in offsets:
                t = [p[d] + padding[d] - k[d] for d in range(3)]
                if all(t[d] >= 0 and t[d] % stride[d] == 0 and t[d] // stride[d] < out_shape[d] for d in range(3)):
                    sites.add((b, *(t[d] // stride[d] for d in range(3))))
        out = np.array(sorted(sites), np.int32).reshape(-1, 4)
    neighbors = np.full((len(out), len(offsets)), -1, np.int32)
    for o, (b, *q) in enumerate(out.tolist()):
        for j, k in enumerate(offsets):
            p = tuple(q[d] * stride[d] - padding[d] + k[d] for d in range(3))
            neighbors[o, j] = where.get((b, *p), -1)
    return out, neighbors, out_shape


def spconv_layer(cin, cout, kernel, stride, padding, subm, rng):
    cls = spconv.SubMConv3d if subm else spconv.SparseConv3d
    layer = cls(cin, cout, kernel, stride=stride, padding=padding, bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(rng.standard_normal(tuple(layer.weight.shape), dtype=np.float32) * 0.2))
        layer.bias.copy_(torch.from_numpy(rng.standard_normal(cout, dtype=np.float32)))
    return layer


def run_spconv(layer, features, coors, shape, relu):
    """spconv on one torch thread: with more, spconv 2.3.8's CPU scatter-add races and its output
    changes from run to run, by whole units, not rounding (seen here; traveller59/spconv#679)."""
    x = spconv.SparseConvTensor(torch.from_numpy(features), torch.from_numpy(coors), list(shape), 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            y = layer(x)
    finally:
        torch.set_num_threads(threads)
    out = y.features.numpy()
    if relu:
        out = np.maximum(out, 0)
    return out, y.indices.numpy()


def rows_by_site(features, coors):
    order = np.lexsort(coors.T[::-1])
    return features[order], coors[order]


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "subm"),
    [(3, 1, 1, True), (3, 2, 1, False), (3, 1, 0, False), ((3, 1, 1), (2, 1, 1), 0, False), ((3, 3, 3), (2, 2, 2), (0, 1, 1), False)],
)
def test_rulebook_matches_dictionary_reference(kernels, kernel, stride, padding, subm):
    rng = np.random.default_rng(0)
    coors = random_sites(rng, 1500)
    rb = kernels.sparse_conv_rulebook(coors, SHAPE, kernel, stride, padding, subm=subm)
    out, neighbors, out_shape = reference_rulebook(coors, SHAPE, kernel, stride, padding, subm)
    assert rb.out_shape == tuple(out_shape)
    np.testing.assert_array_equal(rb.out_coors, out)
    np.testing.assert_array_equal(rb.neighbors, neighbors)
    assert sum(rb.pair_counts) == (neighbors >= 0).sum()


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "subm", "cin", "cout", "relu"),
    [
        (3, 1, 1, True, 16, 16, True),
        (3, 1, 1, True, 4, 24, False),
        (3, 2, 1, False, 16, 32, True),
        ((3, 1, 1), (2, 1, 1), 0, False, 32, 64, True),
        ((3, 3, 3), (2, 2, 2), (0, 1, 1), False, 5, 3, False),
    ],
)
def test_sparse_conv_matches_spconv(kernels, kernel, stride, padding, subm, cin, cout, relu):
    rng = np.random.default_rng(cin * cout)
    coors = random_sites(rng, 4000)
    features = rng.standard_normal((len(coors), cin), dtype=np.float32)
    layer = spconv_layer(cin, cout, kernel, stride, padding, subm, rng)
    ref, ref_coors = run_spconv(layer, features, coors, SHAPE, relu)
    rb = kernels.sparse_conv_rulebook(coors, SHAPE, kernel, stride, padding, subm=subm)
    out = kernels.sparse_conv(features, rb, layer.weight.detach().numpy(), layer.bias.detach().numpy(), relu=relu)
    got, got_coors = rows_by_site(out, rb.out_coors)
    want, want_coors = rows_by_site(ref, ref_coors)
    np.testing.assert_array_equal(got_coors, want_coors)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5)


def test_subm_conv_matches_dense_conv3d_at_the_active_sites(kernels):
    rng = np.random.default_rng(3)
    coors = random_sites(rng, 900, shape=(9, 12, 10))
    features = rng.standard_normal((len(coors), 6), dtype=np.float32)
    weight = rng.standard_normal((8, 3, 3, 3, 6), dtype=np.float32)
    bias = rng.standard_normal(8, dtype=np.float32)
    dense = torch.zeros(1, 6, 9, 12, 10)
    b, z, y, x = (torch.from_numpy(c.astype(np.int64)) for c in coors.T)
    dense[0, :, z, y, x] = torch.from_numpy(features).T
    w = torch.from_numpy(weight).permute(0, 4, 1, 2, 3)  # (Cout, Cin, kd, kh, kw)
    ref = torch.nn.functional.conv3d(dense, w, torch.from_numpy(bias), padding=1)[0, :, z, y, x].T.numpy()
    rb = kernels.sparse_conv_rulebook(coors, (9, 12, 10), 3, 1, 1, subm=True)
    out = kernels.sparse_conv(features, rb, weight, bias)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_sparse_conv_of_empty_and_single_site_inputs(kernels):
    weight = np.ones((4, 3, 3, 3, 2), np.float32)
    rb = kernels.sparse_conv_rulebook(np.zeros((0, 4), np.int32), SHAPE, 3, 2, 1)
    assert rb.num_out == 0
    assert kernels.sparse_conv(np.zeros((0, 2), np.float32), rb, weight).shape == (0, 4)
    site = np.array([[0, 0, 0, 0]], np.int32)  # a corner: padding decides which outputs exist
    rb = kernels.sparse_conv_rulebook(site, SHAPE, 3, 2, 1)
    np.testing.assert_array_equal(rb.out_coors, [[0, 0, 0, 0]])
    out = kernels.sparse_conv(np.array([[1.0, 2.0]], np.float32), rb, weight, np.full(4, -1.0, np.float32))
    np.testing.assert_array_equal(out, [[2.0, 2.0, 2.0, 2.0]])
    rb = kernels.sparse_conv_rulebook(site, SHAPE, 3, 1, 1, subm=True)
    np.testing.assert_array_equal(rb.pair_counts, [0] * 13 + [1] + [0] * 13)


def test_sparse_to_dense_matches_spconv_dense(kernels):
    rng = np.random.default_rng(5)
    coors = random_sites(rng, 700)
    features = rng.standard_normal((len(coors), 7), dtype=np.float32)
    x = spconv.SparseConvTensor(torch.from_numpy(features), torch.from_numpy(coors), list(SHAPE), 1)
    dense = kernels.sparse_to_dense(features, coors, SHAPE)
    np.testing.assert_array_equal(dense, x.dense()[0].numpy())


def test_sparse_to_dense_duplicates_take_the_later_row(kernels):
    coors = np.array([[0, 1, 2, 3], [0, 1, 2, 3]], np.int32)
    dense = kernels.sparse_to_dense(np.array([[1.0], [2.0]], np.float32), coors, (2, 3, 4))
    assert dense[0, 1, 2, 3] == 2.0 and dense.sum() == 2.0


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda k, c: k.sparse_conv_rulebook(c, SHAPE, 3, 2, 1, subm=True), "stride"),
        (lambda k, c: k.sparse_conv_rulebook(c, SHAPE, 3, 1, 0, subm=True), "padding"),
        (lambda k, c: k.sparse_conv_rulebook(c + np.array([0, 30, 0, 0], np.int32), SHAPE), "coors"),
        (lambda k, c: k.sparse_conv_rulebook(c, (4, 4)), "spatial_shape"),
        (lambda k, c: k.sparse_conv(np.zeros((3, 2), np.float32), k.sparse_conv_rulebook(c, SHAPE),
                                    np.zeros((4, 3, 3, 3, 5), np.float32)), "weight"),
        (lambda k, c: k.sparse_conv(np.zeros((2, 2), np.float32), k.sparse_conv_rulebook(c, SHAPE),
                                    np.zeros((4, 3, 3, 3, 2), np.float32)), "features"),
    ],
)
def test_sparse_conv_rejects_bad_arguments_by_name(kernels, call, name):
    coors = np.array([[0, 1, 1, 1], [0, 2, 2, 2], [0, 3, 3, 3]], np.int32)
    with pytest.raises(ValueError, match=f"^{name}:"):
        call(kernels, coors)


def test_sparse_to_dense_writes_into_a_given_array(kernels):
    coors = np.array([[0, 1, 2, 3]], np.int32)
    out = np.full((1, 2, 3, 4), np.nan, np.float32)
    result = kernels.sparse_to_dense(np.array([[5.0]], np.float32), coors, (2, 3, 4), out=out)
    assert np.shares_memory(result, out) and out[0, 1, 2, 3] == 5.0 and np.nansum(out) == 5.0
    assert not np.isnan(out).any()
    with pytest.raises(ValueError, match="^out:"):
        kernels.sparse_to_dense(np.array([[5.0]], np.float32), coors, (2, 3, 4), out=np.zeros((2, 3, 4), np.float32))
