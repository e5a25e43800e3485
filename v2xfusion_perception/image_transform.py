"""The camera image as the network sees it: resize + crop to the preset's input size, then normalise.

This is the evaluation-time image path of the training data pipeline (v2xfusion_tools/data/transforms.py:
`image_crop` without jitter, PIL's bilinear `resize`, `crop`, `normalise_image`), written in numpy so
the runtime needs neither PIL nor torch, and equal to it bit for bit: the resize reproduces Pillow's
8-bit two-pass resampling (a triangle filter widened by the scale when shrinking, coefficients in
22-bit fixed point, the horizontal pass first and each pass rounded to uint8), so the network input
of a frame is the one the model was trained and evaluated on.

Rule (the manifest's `image.resize_rule`): scale = max(W_net / W, H_net / H) so the resized image
covers the input, crop centred sideways (round half to even, as the data pipeline) and keeping the
bottom rows; pixels outside the resized image are black.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Pillow's fixed point: 32 bits minus 8 for the pixel and 2 for filter overshoot (Resample.c)
_PRECISION_BITS = 22


@dataclass(frozen=True)
class ImageCrop:
    """Resize the native image by `scale` to `resized` (W, H), then cut the network input at (left, top)."""

    scale: float
    resized: tuple[int, int]
    left: int
    top: int

    @property
    def matrix(self) -> np.ndarray:
        """img_aug_matrix (4, 4) float64: native pixel (u, v, d) -> (u scale - left, v scale - top, d)."""
        matrix = np.eye(4)
        matrix[0, 0] = matrix[1, 1] = self.scale
        matrix[0, 3], matrix[1, 3] = -self.left, -self.top
        return matrix


def image_crop(native_size: Sequence[int], network_size: Sequence[int]) -> ImageCrop:
    """The resize / crop from a native (W, H) image to the network input (W, H) (module docstring)."""
    width, height = (int(v) for v in native_size)
    out_w, out_h = (int(v) for v in network_size)
    scale = max(out_w / width, out_h / height)
    resized = (round(width * scale), round(height * scale))
    return ImageCrop(scale, resized, round((resized[0] - out_w) / 2), resized[1] - out_h)


@dataclass(frozen=True)
class ResampleTaps:
    """One axis of a Pillow bilinear resize: output i reads input[start[i] + t] * weights[i, t] for
    t < taps, weights in 22-bit fixed point (zero past each output's window). start: (out,) int64;
    weights: (out, taps) int32."""

    start: np.ndarray
    weights: np.ndarray


def resample_taps(in_size: int, out_size: int) -> ResampleTaps:
    """Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear filter (support 1)."""
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = filter_scale
    centre = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    # Pillow rounds with a C cast after adding 0.5: truncation towards zero
    lo = np.maximum(np.trunc(centre - support + 0.5).astype(np.int64), 0)
    hi = np.minimum(np.trunc(centre + support + 0.5).astype(np.int64), in_size)
    count = hi - lo
    taps = int(count.max())
    offsets = np.arange(taps, dtype=np.float64)
    # the same double operations, in the same order, as Pillow: the fixed-point rounding below turns a
    # last-bit difference into a different coefficient
    distance = np.abs((offsets[None, :] + lo[:, None] - centre[:, None] + 0.5) * (1.0 / filter_scale))
    weights = np.where((offsets[None, :] < count[:, None]) & (distance < 1.0), 1.0 - distance, 0.0)
    total = np.zeros((out_size, 1))
    for t in range(taps):
        total[:, 0] += weights[:, t]
    weights = np.divide(weights, total, out=weights, where=total != 0.0)
    fixed = np.trunc(0.5 + weights * (1 << _PRECISION_BITS)).astype(np.int32)
    # see _fixed_point_sum: what makes Pillow's clamp unnecessary
    if fixed.sum(axis=1, dtype=np.int64).max() >= (1 << _PRECISION_BITS) + (1 << (_PRECISION_BITS - 1)) // 255:
        raise ValueError(f"resample {in_size} -> {out_size}: rounded weights sum past the 8-bit range")
    return ResampleTaps(lo, fixed)


class _FixedPointPass:
    """One resampling pass over a 2-D uint8 array with its work buffers kept between frames (fresh
    multi-megabyte buffers cost more in page faults than the arithmetic itself).

    axis 1: along columns of an (rows, W * 3) RGB-interleaved view; axis 0: along rows.
    index / weights: (out, taps) per output pixel from `ResampleTaps`; rows_or_cols: the size of the
    other axis. Pillow adds half a unit, shifts and clamps to 0..255; the bilinear weights are
    non-negative and each output's sum of rounded weights stays below 2^22 + 2^21 / 255
    (`resample_taps` checks it), so the clamp is a no-op and is left out.
    """

    def __init__(self, index: np.ndarray, weights: np.ndarray, axis: int, other: int) -> None:
        self.axis = axis
        if axis == 1:
            # pixel x, channel c sits at column 3 x + c
            self.index = np.ascontiguousarray((index[:, :, None] * 3 + np.arange(3)).transpose(1, 0, 2)
                                              .reshape(index.shape[1], -1))
            self.weights = np.ascontiguousarray(np.repeat(weights.T, 3, axis=1))
            shape = (other, self.index.shape[1])
        else:
            self.index = np.ascontiguousarray(index.T)
            self.weights = np.ascontiguousarray(weights.T[:, :, None])
            shape = (self.index.shape[1], other)
        self.acc = np.zeros(shape, dtype=np.int32)
        self.term = np.zeros(shape, dtype=np.int32)
        self.gathered = np.zeros(shape, dtype=np.uint8)
        self.result = np.zeros(shape, dtype=np.uint8)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """pixels: 2-D uint8 -> the resampled 2-D uint8 (a buffer reused by the next call)."""
        acc, term, gathered = self.acc, self.term, self.gathered
        for t in range(self.index.shape[0]):
            np.take(pixels, self.index[t], axis=self.axis, out=gathered)
            np.multiply(gathered, self.weights[t], out=acc if t == 0 else term)
            if t:
                acc += term
        acc += 1 << (_PRECISION_BITS - 1)
        acc >>= _PRECISION_BITS
        np.copyto(self.result, acc, casting="unsafe")
        return self.result


class NetworkImage:
    """Native camera images of one size -> the camera stage's input, with the resampling taps, index
    arrays, work buffers and normalisation tables made once (a camera's image size does not change).
    One call at a time: the buffers are shared between calls.

    native_size / network_size: (W, H); mean / std: per RGB channel, applied to values in 0-1.
    """

    def __init__(self, native_size: Sequence[int], network_size: Sequence[int], mean: Sequence[float],
                 std: Sequence[float]) -> None:
        self.native_size = (int(native_size[0]), int(native_size[1]))
        self.network_size = (int(network_size[0]), int(network_size[1]))
        self.crop = image_crop(self.native_size, self.network_size)
        width, height = self.native_size
        resized_w, resized_h = self.crop.resized
        net_w, net_h = self.network_size
        # only the output pixels inside the crop are computed; outside the resized image stays black
        self._cols = np.arange(max(self.crop.left, 0), min(self.crop.left + net_w, resized_w))
        self._rows = np.arange(max(self.crop.top, 0), min(self.crop.top + net_h, resized_h))
        self._col_slot = slice(int(self._cols[0]) - self.crop.left, int(self._cols[-1]) + 1 - self.crop.left) \
            if len(self._cols) else slice(0, 0)
        self._row_slot = slice(int(self._rows[0]) - self.crop.top, int(self._rows[-1]) + 1 - self.crop.top) \
            if len(self._rows) else slice(0, 0)
        vertical = self._plan(resample_taps(height, resized_h), self._rows, height) if resized_h != height else None
        rows_needed = vertical[0] if vertical is not None else self._rows
        self._source_rows = (int(rows_needed.min()), int(rows_needed.max()) + 1) if len(rows_needed) else (0, 0)
        first, last = self._source_rows
        self._horizontal = _FixedPointPass(*self._plan(resample_taps(width, resized_w), self._cols, width),
                                           axis=1, other=last - first) if resized_w != width else None
        self._vertical = _FixedPointPass(vertical[0] - first, vertical[1], axis=0, other=len(self._cols) * 3) \
            if vertical is not None else None
        self._picture = np.zeros((self.network_size[1], self.network_size[0], 3), dtype=np.uint8)
        # what normalise_image computes for each 8-bit value, in the same float32 operations
        values = np.arange(256, dtype=np.float32) / np.float32(255.0)
        self._tables = [(values - np.float32(m)) / np.float32(s) for m, s in zip(mean, std)]

    @staticmethod
    def _plan(taps: ResampleTaps, outputs: np.ndarray, in_size: int) -> tuple[np.ndarray, np.ndarray]:
        """For the wanted outputs: source index (out, taps) int64 clamped into range (its weight is 0
        where clamped) and weights (out, taps) int32."""
        index = taps.start[outputs, None] + np.arange(taps.weights.shape[1])[None, :]
        return np.minimum(index, in_size - 1), taps.weights[outputs]

    def picture(self, image: np.ndarray) -> np.ndarray:
        """image: (H, W, 3) uint8 RGB of native_size -> the network-input picture (h, w, 3) uint8 (a
        buffer of this object, overwritten by the next call)."""
        if not len(self._cols) or not len(self._rows):
            return self._picture
        first, last = self._source_rows
        if self._horizontal is not None:
            wide = self._horizontal(image[first:last].reshape(last - first, -1))
        else:
            wide = image[first:last, self._cols].reshape(last - first, -1)
        tall = self._vertical(wide) if self._vertical is not None else wide[self._rows - first]
        self._picture[self._row_slot, self._col_slot] = tall.reshape(len(self._rows), len(self._cols), 3)
        return self._picture

    def __call__(self, image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """image: (H, W, 3) uint8 RGB of native_size -> (1, 3, h, w) float32 normalised network input,
        written into `out` when given (an array of that shape)."""
        picture = self.picture(image)
        net_w, net_h = self.network_size
        if out is None:
            out = np.empty((1, 3, net_h, net_w), dtype=np.float32)
        for channel, table in enumerate(self._tables):
            np.take(table, picture[:, :, channel], out=out[0, channel])
        return out
