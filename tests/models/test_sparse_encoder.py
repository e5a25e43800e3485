"""SparseEncoder of Pipeline B (v2xfusion_tools/models/lidar/sparse_encoder.py)."""
import torch

from v2xfusion_tools.models.lidar.sparse_encoder import SparseEncoder

BEVFUSION = dict(encoder_channels=[[16, 16, 32], [32, 32, 64], [64, 64, 128], [128, 128]],
                 encoder_paddings=[[0, 0, 1], [0, 0, 1], [0, 0, [1, 1, 0]], [0, 0]], block_type="basicblock")


def test_bevfusion_layout_has_21_sparse_convs_and_its_names():
    encoder = SparseEncoder([64, 64, 41], in_channels=4, **BEVFUSION)
    shapes = {k: tuple(v.shape) for k, v in encoder.state_dict().items()}
    convs = [k for k, s in shapes.items() if len(s) == 5]
    assert len(convs) == 21  # guide §5.1: ~21 SparseConv3d / SubMConv3d
    assert shapes["conv_input.0.weight"] == (16, 3, 3, 3, 4)
    assert shapes["encoder_layers.encoder_layer1.0.conv1.weight"] == (16, 3, 3, 3, 16)
    assert shapes["encoder_layers.encoder_layer1.1.bn2.running_var"] == (16,)
    assert shapes["encoder_layers.encoder_layer1.2.0.weight"] == (32, 3, 3, 3, 16)  # stride-2 conv
    assert shapes["encoder_layers.encoder_layer4.1.conv2.weight"] == (128, 3, 3, 3, 128)
    assert shapes["conv_out.0.weight"] == (128, 1, 1, 3, 128)
    # z: 41 -> 21 -> 11 -> 5 (no z padding) -> 2 after conv_out: BEVFusion's 256 BEV channels
    assert encoder.out_shape == (8, 8, 2) and encoder.out_channels == 256


def test_conv_module_layout_opens_stages_with_strided_convs():
    encoder = SparseEncoder([32, 32, 41], in_channels=4)
    shapes = {k: tuple(v.shape) for k, v in encoder.state_dict().items()}
    assert shapes["encoder_layers.encoder_layer2.0.0.weight"] == (32, 3, 3, 3, 16)
    assert encoder.out_shape == (4, 4, 2)


def test_bev_output_lands_under_the_voxels_in_x_major_layout():
    torch.manual_seed(0)
    encoder = SparseEncoder([64, 32, 41], in_channels=1, **BEVFUSION).eval()
    with torch.no_grad():
        for parameter in encoder.parameters():
            if parameter.dim() == 5:
                parameter.abs_()  # positive weights: every active site stays positive through ReLU
    # voxels in (batch, z, y, x): frame 0 at x = 40, y = 8; frame 1 at x = 8, y = 24
    coors = torch.tensor([[0, 20, 8, 40], [1, 20, 24, 8]], dtype=torch.int32)
    bev = encoder(torch.ones(2, 1), coors, batch_size=2)
    assert bev.shape == (2, 256, 8, 4)
    for frame, (x, y) in enumerate([(40, 8), (8, 24)]):
        rows, cols = torch.nonzero(bev[frame].abs().sum(dim=0), as_tuple=True)
        assert len(rows) > 0
        assert (rows - x // 8).abs().max() <= 1 and (cols - y // 8).abs().max() <= 1


def test_sparse_encoder_gradients_reach_the_input_conv():
    encoder = SparseEncoder([32, 32, 41], in_channels=4, **BEVFUSION)
    gen = torch.Generator().manual_seed(0)
    coors = torch.unique(torch.stack([torch.zeros(200, dtype=torch.long),
                                      torch.randint(15, 25, (200,), generator=gen),
                                      torch.randint(0, 32, (200,), generator=gen),
                                      torch.randint(0, 32, (200,), generator=gen)], dim=1), dim=0)
    encoder(torch.randn(coors.shape[0], 4, generator=gen), coors, 1).pow(2).sum().backward()
    assert encoder.conv_input[0].weight.grad.abs().sum() > 0
