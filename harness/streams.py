"""A run's random streams, each keyed by the run (its id), a purpose and, for an eval, the step.

The id hashes every setting with the seed, so runs of different settings share no stream: not
their initial weights, nor their batches and noise, nor their eval points (streams keyed by
the seed alone made every run of one seed, in every setting and objective, start from the same
weights and see the same eval points). Within an eval, what the critic is asked (its
estimates, its Lipschitz constant), what quality is measured on (exact W, the floor) and the
measure's retest come from three independent draws, so no sampling noise is shared between an
estimate and the measure it is set against. A resumed run redraws the same streams. (On images
the real images every eval compares with are one fixed draw shared by all runs, by design, so
that eval-to-eval differences come from the generated side: evaluate/images.py.)
"""

import hashlib

import torch

EVAL_DRAWS = "run"  # each evals row's `eval_draws`; rows without it drew per (seed, step)
TRAIN = "train"  # the initial weights, then batches, noise and the penalty's mixing weights
CRITIC, MEASURE, RETEST = "critic", "measure", "retest"  # an eval's three draws
METRICS, PICTURE = "metrics", "picture"  # images: KID and sliced W2's seed; the grid's noise
# NND's fresh critic: its initial weights, its draws (batches, noise), its held-out points
NND_INIT, NND, HELDOUT = "nnd-init", "nnd", "nnd-heldout"


def draw_seed(run_id: str, step: int | None, purpose: str) -> int:
    """A 63-bit seed for the run's stream `purpose` at `step` (None: once per run)."""
    digest = hashlib.sha256(f"{run_id}:{step}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def eval_rng(run_id: str, step: int | None, purpose: str, device: torch.device) -> torch.Generator:
    """The generator of one eval draw, on `device`; evaluating never touches training's."""
    return torch.Generator(device).manual_seed(draw_seed(run_id, step, purpose))
