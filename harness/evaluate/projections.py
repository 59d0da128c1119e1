"""Low-dimensional views of images in which exact optimal transport is affordable and meaningful.

Each projection is fitted once on real data only (never on the generator), with a fixed seed,
so every eval of every run on the same data measures W in the same space. Fitting runs on the
CPU (scikit-learn); projecting runs in float64 on the device the samples are on.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

SOURCES = {  # projection kind -> what it is applied to
    "inception-pca": "inception",  # the 2048-d Inception pool features of FID
    "pixel-pca": "pixels",
    "random": "pixels",  # Gaussian random projection (Johnson-Lindenstrauss), fixed seed
}
PCA_FIT_SAMPLES = 10_000  # PCA is fitted on at most this many real samples


@dataclass(frozen=True)
class Projection:
    """x -> (x - mean) @ matrix, on rows of flattened pixels or of Inception features."""

    name: str  # the evals.parquet column suffix, e.g. "pixel_pca8"
    source: str  # "pixels" | "inception"
    mean: Tensor  # float64 (input dim,)
    matrix: Tensor  # float64 (input dim, output dim)

    def __call__(self, x: Tensor) -> Tensor:
        return (x.reshape(len(x), -1).to(self.matrix) - self.mean) @ self.matrix

    def to(self, device: torch.device) -> "Projection":
        return Projection(self.name, self.source, self.mean.to(device), self.matrix.to(device))


def column_name(kind: str, dim: int) -> str:
    return f"{kind.replace('-', '_')}{dim}"


def fit_projections(
    kinds: tuple[str, ...], dims: tuple[int, ...], real: dict[str, np.ndarray], seed: int = 0
) -> list[Projection]:
    """One Projection per (kind, dim); `real` maps each source to real rows (n, input dim)."""
    out = []
    for kind in kinds:
        x = real[SOURCES[kind]].reshape(len(real[SOURCES[kind]]), -1).astype(np.float64)
        mean = x.mean(axis=0)
        if kind == "random":
            full = np.random.default_rng(seed).standard_normal((x.shape[1], max(dims)))
            matrices = {d: full[:, :d] / np.sqrt(d) for d in dims}
        else:
            top = max(dims)
            if top > min(x.shape):
                raise ValueError(f"{kind} to {top} dims needs more than {len(x)} real samples")
            from sklearn.decomposition import PCA  # on first use: sklearn's import is slow

            pca = PCA(n_components=top, svd_solver="randomized", random_state=seed)
            pca.fit(x[:PCA_FIT_SAMPLES])
            matrices = {d: pca.components_[:d].T for d in dims}  # leading components nest
        out += [
            Projection(
                column_name(kind, d),
                SOURCES[kind],
                torch.from_numpy(mean),
                torch.from_numpy(np.ascontiguousarray(matrices[d])),
            )
            for d in dims
        ]
    return out
