"""Evaluation at eval steps: one evaluator per run, built once, called for one evals row.

Points (toy data): exact W in the data space. Images: the sample-quality metrics the run chooses
through torch-fidelity (FID / IS / KID, precision and recall, FD-DINOv2) and exact W on
low-dimensional projections. Both record the critic's value on held-out real data.
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
    """(step, G, D, the real batch of the critic's last update) -> the evals row at `step`."""

    def __call__(
        self, step: int, generator: nn.Module, critic: nn.Module, train_real: Tensor | None = None
    ) -> dict[str, Any]: ...


def build_evaluator(
    spec: RunSpec,
    train: Sampler,
    objective: Objective,
    folder: RunFolder,
    device: torch.device,
    weights_path: str | None = None,
    vgg16_weights: str | None = None,
) -> Evaluator:
    """The evaluator of one run, whose training data is `train` and whose samples go to
    `folder`. `weights_path`: an Inception weights file (FID / IS / KID, inception-pca);
    `vgg16_weights`: a VGG16 weights file (precision_recall); None: torch-fidelity's release."""
    if not spec.images:
        return PointsEvaluator(spec, train, objective, folder, device)
    from harness.evaluate.images import ImageEvaluator  # here: torch-fidelity loads in a second

    heldout = build_sampler(spec.data, device, split="test")
    assert isinstance(train, ImageSet) and isinstance(heldout, ImageSet)
    return ImageEvaluator(
        spec, train, heldout, objective, folder, device, weights_path, vgg16_weights
    )
