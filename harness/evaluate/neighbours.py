"""k-nearest-neighbour balls of feature sets: improved precision and recall (Kynkaanniemi et al.
2019) and density and coverage (Naeem et al. 2020).

torch-fidelity's `prc_features_to_metric` finds the real set's k-NN radii again at every call
(N x N distances: tens of seconds on CIFAR-10's 50k); here a `Balls` holds them, found once with
the real side, and one pass over the generated x real distances gives all four numbers. The
conventions are torch-fidelity's, so precision and recall equal its own: a point's radius is its
distance to its k-th nearest neighbour other than itself (the (k+1)-th smallest distance to its
set, its own 0 counted), and a point is in a ball at a distance <= the radius (the prdc package
uses <; the two differ only on exact ties, such as repeated images). Distances are computed in
row chunks, where the features lie.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

CHUNK_ELEMENTS = 2**25  # distances held at once: 128 MiB of float32


def chunk_rows(columns: int, chunk_elements: int = CHUNK_ELEMENTS) -> int:
    """Rows of a distance chunk with `columns` columns that fit in `chunk_elements`."""
    return max(1, chunk_elements // max(1, columns))


def neighbour_radii(
    features: Tensor, ks: Iterable[int], chunk_elements: int = CHUNK_ELEMENTS
) -> dict[int, Tensor]:
    """Each point's distance to its k-th nearest other point of `features` (N x D), for each k
    in `ks`, from one pass over the N x N distances."""
    wanted = sorted(set(ks))
    if not wanted or wanted[0] < 1:
        raise ValueError(f"k must be >= 1 (got {wanted})")
    top = wanted[-1] + 1  # the point itself is among its nearest, at distance 0
    if len(features) < top:
        raise ValueError(
            f"{len(features)} points have no {wanted[-1]}-th nearest neighbour besides themselves"
        )
    nearest = torch.cat(
        [
            torch.cdist(rows, features).topk(top, dim=1, largest=False).values
            for rows in features.split(chunk_rows(len(features), chunk_elements))
        ]
    )  # ascending: column k is the (k+1)-th smallest
    return {k: nearest[:, k].contiguous() for k in wanted}


def radii(features: Tensor, k: int, chunk_elements: int = CHUNK_ELEMENTS) -> Tensor:
    """Each point's distance to its k-th nearest other point of `features`."""
    return neighbour_radii(features, (k,), chunk_elements)[k]


@dataclass(frozen=True)
class Balls:
    """A feature set (N x D) and the k-NN radius of each of its points, for each k it was made
    with: the union of the balls is the set's manifold estimate."""

    features: Tensor
    radii: dict[int, Tensor]

    @classmethod
    def of(
        cls, features: Tensor, ks: Iterable[int], chunk_elements: int = CHUNK_ELEMENTS
    ) -> "Balls":
        return cls(features, neighbour_radii(features, ks, chunk_elements))

    def radius(self, k: int) -> Tensor:
        if k not in self.radii:
            raise ValueError(f"the balls were made for k in {sorted(self.radii)}, not {k}")
        return self.radii[k]


def manifold_metrics(
    generated: Tensor,
    real: Balls,
    precision_recall_k: int | None = None,
    density_coverage_k: int | None = None,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> dict[str, float]:
    """Precision and recall with k = `precision_recall_k`, density and coverage with k =
    `density_coverage_k` (either None: not computed) of `generated` (M x D) against `real`,
    from one pass over the M x N distances. Keys: precision, recall, density, coverage.

    precision: the share of generated points inside some real ball; recall: the share of real
    points inside some generated ball (the generated set's own radii); density: (1 / kM) times
    the number of (generated, real) pairs with the generated point inside the real ball;
    coverage: the share of real balls holding a generated point.
    """
    m, n = len(generated), len(real.features)
    rows = chunk_rows(n, chunk_elements)
    device = generated.device
    out: dict[str, float] = {}
    if precision_recall_k is not None:
        real_pr = real.radius(precision_recall_k)
        fake_pr = radii(generated, precision_recall_k, chunk_elements).split(rows)
        inside = torch.zeros((), dtype=torch.long, device=device)
        recalled = torch.zeros(n, dtype=torch.bool, device=device)
    if density_coverage_k is not None:
        real_dc = real.radius(density_coverage_k)
        hits = torch.zeros((), dtype=torch.long, device=device)
        nearest = torch.full((n,), torch.inf, dtype=real.features.dtype, device=device)
    for i, chunk in enumerate(generated.split(rows)):
        distance = torch.cdist(chunk, real.features)  # generated rows, real columns
        if precision_recall_k is not None:
            inside += (distance <= real_pr).any(dim=1).sum()
            recalled |= (distance <= fake_pr[i][:, None]).any(dim=0)
        if density_coverage_k is not None:
            hits += (distance <= real_dc).sum()
            nearest = torch.minimum(nearest, distance.min(dim=0).values)
    if precision_recall_k is not None:
        out["precision"] = inside.item() / m
        out["recall"] = recalled.sum().item() / n
    if density_coverage_k is not None:
        out["density"] = hits.item() / (density_coverage_k * m)
        out["coverage"] = (nearest <= real_dc).sum().item() / n
    return out


def precision_recall(
    generated: Tensor, real: Balls, k: int = 3, chunk_elements: int = CHUNK_ELEMENTS
) -> tuple[float, float]:
    """Kynkaanniemi et al.'s improved precision and recall, k = 3 as theirs and torch-fidelity's."""
    out = manifold_metrics(generated, real, precision_recall_k=k, chunk_elements=chunk_elements)
    return out["precision"], out["recall"]


def density_coverage(
    generated: Tensor, real: Balls, k: int = 5, chunk_elements: int = CHUNK_ELEMENTS
) -> tuple[float, float]:
    """Naeem et al.'s density and coverage, k = 5 as theirs."""
    out = manifold_metrics(generated, real, density_coverage_k=k, chunk_elements=chunk_elements)
    return out["density"], out["coverage"]
