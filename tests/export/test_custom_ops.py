"""The OpenVINO extension's custom ops (ov_extension/, BevPoolV2, SparseConvolution, SparseToDense) and
the export's PyTorch Functions, each against the PyTorch modules of the model it replaces."""
import numpy as np
import onnx
import openvino as ov
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import v2xfusion_ov_extension
from models.batches import load_fixture
from v2xfusion_tools.export.custom_ops import DOMAIN, bev_pool_v2_intervals, sparse_convolution, sparse_to_dense_bev
from v2xfusion_tools.export.geometry import frustum_points, precompute_geometry
from v2xfusion_tools.export.onnx_unified import FoldedSparseConv
from v2xfusion_tools.export.openvino_ir import F32_CONFIG
from v2xfusion_tools.models import build_model
from v2xfusion_tools.models.camera.bev_pool import bev_pool_v2
from v2xfusion_tools.models.lidar.sparse_encoder import SparseConvBlock
from v2xfusion_tools.models.sparse import SparseConv3d, SparseTensor, SubMConv3d

from .trained import batch_camera_calibration


def _core() -> ov.Core:
    core = ov.Core()
    core.add_extension(str(v2xfusion_ov_extension.library_path()))
    return core


def _single_node_model(op: str, inputs: list, outputs: list, initializers=(), **attributes) -> onnx.ModelProto:
    node = helper.make_node(op, [i.name for i in inputs] + [t.name for t in initializers],
                            [o.name for o in outputs], domain=DOMAIN, **attributes)
    graph = helper.make_graph([node], op, inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)])


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    core = _core()
    compiled = core.compile_model(core.read_model(model.SerializeToString(), b""), "CPU", F32_CONFIG)
    result = compiled(feeds)
    return [np.asarray(result[o]) for o in compiled.outputs]


def _value(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


@pytest.fixture(scope="module")
def camera():
    """The view transform of the tiny kitti Pipeline B model and the test camera's geometry."""
    config = load_fixture("b", "kitti")
    vtransform = build_model(config).encoders["camera"]["vtransform"]
    calibration = batch_camera_calibration(config)
    return vtransform, calibration, precompute_geometry(vtransform, calibration)


def test_bev_pool_v2_op_and_function_equal_the_models_bev_pool(camera):
    vtransform, calibration, geometry = camera
    gen = torch.Generator().manual_seed(0)
    fh, fw = vtransform.feature_size[1], vtransform.feature_size[0]
    depth = torch.rand(1, vtransform.D, fh, fw, generator=gen).softmax(dim=1)
    feature = torch.randn(1, fh, fw, 80, generator=gen)
    points = frustum_points(vtransform, calibration).unsqueeze(0)
    want = bev_pool_v2(depth, feature, vtransform.prepare_bevpool_v2(points))  # the model's own ranks
    nx, ny, nz = vtransform.grid.shape
    model = _single_node_model(
        "BevPoolV2", [_value("depth", TensorProto.FLOAT, list(depth.shape)),
                      _value("feature", TensorProto.FLOAT, list(feature.shape)),
                      _value("indices", TensorProto.INT32, [len(geometry.indices)]),
                      _value("intervals", TensorProto.INT32, ["K", 3])],
        [_value("bev", TensorProto.FLOAT, None)], bev_dims=[nx, ny, nz])
    (got,) = _run(model, {"depth": depth.numpy(), "feature": feature.numpy(), "indices": geometry.indices,
                          "intervals": geometry.intervals})
    assert want.abs().sum() > 0 and got.shape == tuple(want.shape)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5 * float(want.abs().max()))
    function = bev_pool_v2_intervals(depth, feature, torch.from_numpy(geometry.indices),
                                     torch.from_numpy(geometry.intervals), (nx, ny, nz))
    np.testing.assert_allclose(function.numpy(), want.numpy(), rtol=1e-5, atol=1e-5 * float(want.abs().max()))


def test_bev_pool_v2_op_refuses_geometry_of_another_frustum(camera):
    vtransform, _, geometry = camera
    nx, ny, nz = vtransform.grid.shape
    model = _single_node_model(
        "BevPoolV2", [_value("depth", TensorProto.FLOAT, [1, 2, 2, 2]), _value("feature", TensorProto.FLOAT, [1, 2, 2, 8]),
                      _value("indices", TensorProto.INT32, [len(geometry.indices)]),
                      _value("intervals", TensorProto.INT32, ["K", 3])],
        [_value("bev", TensorProto.FLOAT, None)], bev_dims=[nx, ny, nz])
    with pytest.raises(RuntimeError, match="BevPoolV2: indices"):
        _run(model, {"depth": np.ones((1, 2, 2, 2), np.float32), "feature": np.ones((1, 2, 2, 8), np.float32),
                     "indices": geometry.indices, "intervals": geometry.intervals})


def _random_sites(count: int, shape_xyz, seed: int) -> torch.Tensor:
    """Unique (0, x, y, z) sites in a grid (x, y, z), int64."""
    gen = torch.Generator().manual_seed(seed)
    volume = shape_xyz[0] * shape_xyz[1] * shape_xyz[2]
    keys = torch.randperm(volume, generator=gen)[:count]
    x, rest = keys // (shape_xyz[1] * shape_xyz[2]), keys % (shape_xyz[1] * shape_xyz[2])
    return torch.stack([torch.zeros_like(x), x, rest // shape_xyz[2], rest % shape_xyz[2]], dim=1)


def _eval_block(conv: SparseConv3d, seed: int) -> SparseConvBlock:
    """conv + BatchNorm1d (random statistics, eval mode) + ReLU, as the SparseEncoder's blocks."""
    torch.manual_seed(seed)
    block = SparseConvBlock(conv)
    block[1].running_mean.uniform_(-0.5, 0.5)
    block[1].running_var.uniform_(0.5, 2.0)
    block[1].weight.data.uniform_(0.5, 1.5)
    block[1].bias.data.uniform_(-0.2, 0.2)
    return block.eval()


def _sort_rows(coors: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort(coors.T[::-1])
    return coors[order], features[order]


@pytest.mark.parametrize("subm", [True, False], ids=["SubMConv3d", "SparseConv3d-stride2"])
def test_sparse_convolution_op_equals_the_models_conv_bn_relu(subm):
    shape_xyz = (24, 20, 9)
    sites = _random_sites(300, shape_xyz, seed=1)
    conv = SubMConv3d(4, 16, 3, padding=1) if subm else SparseConv3d(4, 16, 3, stride=2, padding=1)
    block = _eval_block(conv, seed=2)
    features = torch.randn(len(sites), 4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = block(SparseTensor(features, sites, shape_xyz, 1))
    folded = FoldedSparseConv(conv, block[1], True, shape_xyz, "subm1" if subm else "spconv2")
    zyx = sites[:, [0, 3, 2, 1]].int()
    weight = numpy_helper.from_array(folded.weight.numpy(), "weight")
    bias = numpy_helper.from_array(folded.bias.numpy(), "bias")
    outputs = [_value("out", TensorProto.FLOAT, None)] + ([] if subm else [_value("out_indices", TensorProto.INT32, None)])
    model = _single_node_model(
        "SparseConvolution", [_value("features", TensorProto.FLOAT, ["N", 4]), _value("indices", TensorProto.INT32, ["N", 4])],
        outputs, [weight, bias], kernel_size=list(folded.kernel_size), stride=list(folded.stride),
        padding=list(folded.padding), dilation=list(folded.dilation), in_spatial_shape=list(folded.in_spatial_shape),
        subm=int(subm), indice_key=folded.indice_key, activation="relu")
    got = _run(model, {"features": features.numpy(), "indices": zyx.numpy()})
    got_sites = zyx.numpy() if subm else got[1]
    got_xyz, got_features = _sort_rows(got_sites[:, [0, 3, 2, 1]], got[0])
    want_xyz, want_features = _sort_rows(want.indices.numpy(), want.features.numpy())
    np.testing.assert_array_equal(got_xyz, want_xyz)
    np.testing.assert_allclose(got_features, want_features, rtol=1e-5, atol=1e-5 * float(np.abs(want_features).max()))
    function, function_sites = sparse_convolution(features, zyx, folded.weight, folded.bias, folded.kernel_size,
                                                  folded.stride, folded.padding, folded.dilation,
                                                  folded.in_spatial_shape, subm, True)
    f_xyz, f_features = _sort_rows(function_sites.numpy()[:, [0, 3, 2, 1]], function.numpy())
    np.testing.assert_array_equal(f_xyz, want_xyz)
    np.testing.assert_allclose(f_features, want_features, rtol=1e-5, atol=1e-5 * float(np.abs(want_features).max()))


def test_sparse_to_dense_op_equals_sparse_tensor_dense_in_bev_layout():
    shape_xyz = (12, 10, 3)
    sites = _random_sites(80, shape_xyz, seed=4)
    features = torch.randn(80, 5, generator=torch.Generator().manual_seed(5))
    dense = SparseTensor(features, sites, shape_xyz, 1).dense()  # (1, C, X, Y, Z)
    want = dense.permute(0, 1, 4, 2, 3).reshape(1, 5 * 3, 12, 10)  # channel c * Z + z, as SparseEncoder
    zyx = sites[:, [0, 3, 2, 1]].int()
    model = _single_node_model(
        "SparseToDense", [_value("features", TensorProto.FLOAT, ["M", 5]), _value("indices", TensorProto.INT32, ["M", 4])],
        [_value("bev", TensorProto.FLOAT, None)], spatial_shape=[3, 10, 12])
    (got,) = _run(model, {"features": features.numpy(), "indices": zyx.numpy()})
    np.testing.assert_array_equal(got, want.numpy())
    np.testing.assert_array_equal(sparse_to_dense_bev(features, zyx, (3, 10, 12)).numpy(), want.numpy())


def test_sparse_convolution_op_refuses_sites_outside_its_grid():
    model = _single_node_model(
        "SparseConvolution", [_value("features", TensorProto.FLOAT, ["N", 1]), _value("indices", TensorProto.INT32, ["N", 4])],
        [_value("out", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones((2, 3, 3, 3, 1), np.float32), "weight"),
         numpy_helper.from_array(np.zeros(2, np.float32), "bias")],
        kernel_size=[3, 3, 3], stride=[1, 1, 1], padding=[1, 1, 1], dilation=[1, 1, 1], in_spatial_shape=[4, 4, 4],
        subm=1, indice_key="subm1", activation="none")
    with pytest.raises(RuntimeError, match="outside in_spatial_shape"):
        _run(model, {"features": np.ones((1, 1), np.float32), "indices": np.array([[0, 0, 9, 0]], np.int32)})
