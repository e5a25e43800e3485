"""The runtime's camera input equals the training data pipeline's evaluation-time image path, bit for bit.

Reference: v2xfusion_tools/data/transforms.py (PIL's bilinear resize, crop, normalise_image), the
code the models are trained and evaluated with.
"""
import numpy as np
import pytest
from PIL import Image

from v2xfusion_perception.image_transform import NetworkImage, image_crop, resample_taps
from v2xfusion_tools.data import transforms

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CASES = [
    ((1920, 1080), (1536, 864)),   # v2x preset: DAIR native -> network input, shrink 0.8
    ((1242, 375), (1280, 384)),    # kitti preset: KITTI native, enlarge, bottom rows kept
    ((1224, 370), (1280, 384)),    # another KITTI camera size
    ((1242, 375), (128, 64)),      # strong shrink with a sideways crop (the tests' tiny models)
    ((1920, 1080), (128, 64)),     # shrink by 15: a wide filter
    ((640, 480), (1280, 384)),     # enlarge x2, most rows cropped away
    ((301, 200), (150, 100)),      # odd sizes
    ((300, 300), (300, 300)),      # identity
]


def smooth_image(size, seed):
    """A random image with both noise and gradients (edges and flat parts both matter to rounding)."""
    width, height = size
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width, 3))
    ramp = (np.linspace(0, 255, width)[None, :, None] + np.linspace(0, 80, height)[:, None, None]) % 256
    return np.where(rng.random((height, width, 1)) < 0.5, noise, ramp).astype(np.uint8)


@pytest.mark.parametrize("native,network", CASES, ids=[f"{a[0]}x{a[1]}-{b[0]}x{b[1]}" for a, b in CASES])
def test_network_input_equals_the_data_pipeline_bit_for_bit(native, network):
    image = smooth_image(native, seed=sum(native))
    crop = transforms.image_crop(native, network)
    expected_picture = transforms.apply_image_crop(Image.fromarray(image), crop, network)
    expected = transforms.normalise_image(expected_picture, MEAN, STD)
    plan = NetworkImage(native, network, MEAN, STD)
    np.testing.assert_array_equal(plan.picture(image), expected_picture)
    out = plan(image)
    assert out.shape == (1, 3, network[1], network[0]) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], expected)


def test_crop_matrix_is_the_data_pipelines_img_aug_matrix():
    for native, network in CASES:
        ours = image_crop(native, network)
        theirs = transforms.image_crop(native, network)
        assert (ours.resized, ours.left, ours.top) == (theirs.resized, theirs.left, theirs.top)
        np.testing.assert_array_equal(ours.matrix, theirs.matrix)


def test_plan_is_reused_for_many_frames_without_mixing_them():
    plan = NetworkImage((1242, 375), (1280, 384), MEAN, STD)
    first, second = smooth_image((1242, 375), 1), smooth_image((1242, 375), 2)
    want_first = plan(first).copy()
    plan(second)
    np.testing.assert_array_equal(plan(first), want_first)


def test_resample_weights_sum_to_one_in_fixed_point():
    for in_size, out_size in ((1920, 1536), (375, 386), (1242, 128), (200, 100)):
        taps = resample_taps(in_size, out_size)
        sums = taps.weights.sum(axis=1)
        assert np.all(np.abs(sums - (1 << 22)) <= taps.weights.shape[1])
        assert taps.start.min() >= 0 and (taps.start + (taps.weights > 0).sum(axis=1)).max() <= in_size
