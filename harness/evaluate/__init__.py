"""Evaluation at eval steps: one evaluator per run, built once, called for one evals row.

Points (toy data): exact W in the data space. Images: torch-fidelity's FID / IS / KID and exact
W on low-dimensional projections. Both record the critic's value on held-out real data.
"""

from typing import Any, Protocol

import torch
from torch import Tensor, nn

from harness.data import Sampler, build_sampler
from harness.data.images import ImageSet
from harness.evaluate.points import PointsEvaluator
from harness.objectives import Objective
from harness.records import RunFolder
from harness.spec import RunSpec


class Evaluator(Protocol):
    def __call__(
        self,
        step: int,
        generator: nn.Module,
        critic: nn.Module,
        objective: Objective,
        folder: RunFolder,
        train_real: Tensor | None = None,  # the real batch of the critic's last update
    ) -> dict[str, Any]: ...


def build_evaluator(
    spec: RunSpec, train: Sampler, device: torch.device, weights_path: str | None = None
) -> Evaluator:
    """The evaluator for a run whose training data is `train`."""
    if not spec.images:
        return PointsEvaluator(spec.seed, spec.eval_samples, spec.z_dim, train, device)
    from harness.evaluate.images import ImageEvaluator  # here: torch-fidelity loads in a second

    heldout = build_sampler(spec.data, device, split="test")
    assert isinstance(train, ImageSet) and isinstance(heldout, ImageSet)
    return ImageEvaluator(spec, train, heldout, device, weights_path)
