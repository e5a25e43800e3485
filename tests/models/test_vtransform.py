"""LSS view transforms (v2xfusion_tools/models/camera/vtransform.py)."""
import torch

from v2xfusion_tools.models.camera.vtransform import DepthLSSTransform, LSSTransform, render_lidar_depth
from .batches import camera_calibration

BOUNDS = dict(xbound=[0.0, 25.6, 0.8], ybound=[-12.8, 12.8, 0.8], zbound=[-5.0, 3.0, 8.0])


def _transform(cls=LSSTransform, **kwargs):
    args = dict(in_channels=16, out_channels=8, image_size=[128, 64], feature_size=[8, 4],
                dbound=[1.0, 30.0, 29], **BOUNDS)
    args.update(kwargs)
    return cls(**args)


def _geometry(vt, batch=2):
    intrinsics, lidar2camera = camera_calibration(batch, [128, 64])
    eye = torch.eye(4).expand(batch, 4, 4)
    return vt.geometry(torch.inverse(lidar2camera), intrinsics, eye, eye,
                       torch.tensor([0.0, 0.0, 1.0, 1.6]).expand(batch, 4))


def test_camera_depth_and_feature_shapes_and_softmax():
    vt = _transform()
    depth, feat = vt.camera_depth_and_feature(torch.randn(2, 16, 4, 8))
    assert depth.shape == (2, 29, 4, 8) and feat.shape == (2, 4, 8, 8)
    torch.testing.assert_close(depth.sum(dim=1), torch.ones(2, 4, 8))
    assert tuple(vt.depthnet.weight.shape) == (29 + 8, 16, 1, 1)


def test_bevpool_choice_does_not_change_the_camera_bev():
    torch.manual_seed(0)
    v1 = _transform(use_bevpool="bevpoolv1")
    v2 = _transform(use_bevpool="bevpoolv2")
    v2.load_state_dict(v1.state_dict())
    x = torch.randn(2, 16, 4, 8)
    geom = _geometry(v1)
    bev1, bev2 = v1(x, geom), v2(x, geom)
    assert bev1.shape == (2, 8, 32, 32) and bev1.abs().sum() > 0
    assert (bev1 - bev2).abs().max() < 1e-5


def test_height_mode_fills_cells_in_front_of_the_camera():
    vt = _transform(depth_mode="height", dbound=[-2.0, 0.0, 10], height_bin_power=1.5, downsample=2)
    bev = vt(torch.randn(2, 16, 4, 8), _geometry(vt))
    assert bev.shape == (2, 8, 16, 16)
    assert vt.D == 10 and vt.bins[0] == -2.0


def test_depth_lss_transform_uses_the_lidar_depth_image():
    vt = _transform(DepthLSSTransform).eval()
    keys = set(vt.state_dict())
    assert {"dtransform.0.weight", "dtransform.3.weight", "dtransform.6.weight", "depthnet.6.weight"} <= keys
    x = torch.randn(2, 16, 4, 8)
    empty = torch.zeros(2, 1, 64, 128)
    sparse = empty.clone()
    sparse[:, 0, 40, 60] = 12.0
    d_empty, _ = vt.camera_depth_and_feature(x, empty)
    d_sparse, _ = vt.camera_depth_and_feature(x, sparse)
    assert d_empty.shape == (2, 29, 4, 8)
    assert (d_empty - d_sparse).abs().max() > 0


def test_render_lidar_depth_puts_a_point_on_its_pixel():
    intrinsics, lidar2camera = camera_calibration(1, [128, 64], height=0.0, pitch_deg=0.0)
    points = [torch.tensor([[10.0, 0.0, 0.0, 0.5], [10.0, -2.5, 1.25, 0.5], [-5.0, 0.0, 0.0, 0.5]])]
    eye = torch.eye(4).unsqueeze(0)
    depth = render_lidar_depth(points, intrinsics @ lidar2camera, eye, eye, [128, 64])
    # focal 64, centre (64, 32): (10, 0, 0) -> (64, 32); (10, -2.5, 1.25) -> (64 + 16, 32 - 8)
    assert depth[0, 0, 32, 64] == 10.0 and depth[0, 0, 24, 80] == 10.0
    assert (depth > 0).sum() == 2  # the point behind the camera is not drawn
