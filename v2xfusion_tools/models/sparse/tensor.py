"""SparseTensor: active voxel sites with their features, the input and output of sparse convs."""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class SparseTensor:
    """features: (N, C) float32; indices: (N, 4) int64 (batch, i0, i1, i2), unique rows;
    spatial_shape: (S0, S1, S2); batch_size: B.

    `rulebooks` caches the submanifold rulebooks built over these indices; tensors that share the
    indices (outputs of submanifold convs, BN, ReLU) share the cache, as spconv's `indice_key`.
    """

    features: Tensor
    indices: Tensor
    spatial_shape: tuple[int, int, int]
    batch_size: int
    rulebooks: dict = field(default_factory=dict)

    def replace_features(self, features: Tensor) -> "SparseTensor":
        """The same sites with new features (N, C')."""
        return SparseTensor(features, self.indices, self.spatial_shape, self.batch_size, self.rulebooks)

    def dense(self) -> Tensor:
        """(B, C, S0, S1, S2) float32, zero where no site is active."""
        s0, s1, s2 = self.spatial_shape
        idx = self.indices
        rows = ((idx[:, 0] * s0 + idx[:, 1]) * s1 + idx[:, 2]) * s2 + idx[:, 3]
        channels = self.features.shape[1]
        out = self.features.new_zeros(self.batch_size * s0 * s1 * s2, channels)
        out = out.index_copy(0, rows, self.features)
        return out.view(self.batch_size, s0, s1, s2, channels).permute(0, 4, 1, 2, 3)
