"""Pure-PyTorch sparse convolution (v2xfusion_tools/models/sparse/) against dense conv3d and spconv."""
import pytest
import spconv.pytorch as spconv
import torch
import torch.nn.functional as F

from v2xfusion_tools.models.sparse import SparseConv3d, SparseTensor, SubMConv3d

SHAPE = (9, 8, 7)
CONVS = {
    "subm3": lambda: SubMConv3d(3, 4, 3, padding=1),
    "down3": lambda: SparseConv3d(3, 4, 3, stride=2, padding=1),
    "down3_nopad_z": lambda: SparseConv3d(3, 4, 3, stride=2, padding=(1, 1, 0)),
    "conv_out": lambda: SparseConv3d(3, 4, (1, 1, 3), stride=(1, 1, 2)),
}


def _sparse_input(seed=0, batch=2, sites=60):
    gen = torch.Generator().manual_seed(seed)
    idx = torch.stack([torch.randint(0, batch, (sites,), generator=gen)] +
                      [torch.randint(0, s, (sites,), generator=gen) for s in SHAPE], dim=1)
    idx = torch.unique(idx, dim=0)
    return SparseTensor(torch.randn(idx.shape[0], 3, generator=gen), idx, SHAPE, batch)


def _dense_conv(conv, dense):
    return F.conv3d(dense, conv.weight.permute(0, 4, 1, 2, 3), stride=conv.stride, padding=conv.padding)


@pytest.mark.parametrize("name", CONVS)
def test_sparse_conv_equals_dense_conv3d(name):
    torch.manual_seed(0)
    conv = CONVS[name]()
    x = _sparse_input()
    y = conv(x)
    reference = _dense_conv(conv, x.dense())
    if conv.subm:  # a submanifold conv computes the dense result at the input sites only
        i = x.indices
        torch.testing.assert_close(y.features, reference[i[:, 0], :, i[:, 1], i[:, 2], i[:, 3]],
                                   atol=1e-5, rtol=1e-5)
        assert torch.equal(y.indices, x.indices)
    else:  # a regular conv is the dense conv, zero wherever no input reaches
        assert y.spatial_shape == tuple(reference.shape[2:])
        torch.testing.assert_close(y.dense(), reference, atol=1e-5, rtol=1e-5)
        reached = (reference.abs().sum(dim=1) > 0).sum()
        assert y.indices.shape[0] >= reached


@pytest.mark.parametrize("name", CONVS)
def test_sparse_conv_gradients_equal_dense_conv3d(name):
    torch.manual_seed(1)
    conv = CONVS[name]()
    x = _sparse_input(seed=1)
    features = x.features.clone().requires_grad_()
    y = conv(x.replace_features(features))
    weights = torch.randn(y.features.shape, generator=torch.Generator().manual_seed(2))
    (y.features * weights).sum().backward()
    grad_weight, grad_features = conv.weight.grad.clone(), features.grad.clone()
    conv.weight.grad = None
    dense = x.replace_features(features.detach().clone().requires_grad_())
    dense_in = dense.dense().detach().requires_grad_()
    reference = _dense_conv(conv, dense_in)
    out_grad = y.replace_features(weights).dense()
    (reference * out_grad).sum().backward()
    i = x.indices
    torch.testing.assert_close(grad_features, dense_in.grad[i[:, 0], :, i[:, 1], i[:, 2], i[:, 3]],
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(grad_weight, conv.weight.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", CONVS)
def test_sparse_conv_matches_spconv_weights_and_sites(name):
    torch.manual_seed(3)
    conv = CONVS[name]()
    reference_cls = spconv.SubMConv3d if conv.subm else spconv.SparseConv3d
    reference = reference_cls(3, 4, conv.kernel_size, stride=conv.stride, padding=conv.padding, bias=False)
    assert reference.weight.shape == conv.weight.shape  # spconv 2.x layout (out, k0, k1, k2, in)
    reference.weight.data.copy_(conv.weight.data)
    x = _sparse_input(seed=3)
    expected = reference(spconv.SparseConvTensor(x.features, x.indices.int(), list(SHAPE), x.batch_size))
    y = conv(x)
    assert list(expected.spatial_shape) == list(y.spatial_shape)
    assert expected.indices.shape[0] == y.indices.shape[0]
    torch.testing.assert_close(y.dense(), expected.dense(), atol=1e-5, rtol=1e-5)


def test_submanifold_rulebook_is_shared_by_tensors_on_the_same_sites():
    x = _sparse_input()
    first, second = SubMConv3d(3, 3, 3, padding=1), SubMConv3d(3, 3, 3, padding=1)
    y = first(x)
    assert len(x.rulebooks) == 1 and y.rulebooks is x.rulebooks
    second(y)
    assert len(x.rulebooks) == 1
