"""Runs per hour of a whole suite: `harness run --workers 2` against `--workers 1`.

A small toy suite at width 128 (where one thread runs as fast as two on a 2-core CPU, so a
second process is the lever): GAN, WGAN and WGAN-GP, 4 seeds each, gan_toy.py's batch 256, 600
steps. Each repeat trains the whole suite from nothing into a fresh folder, once with one worker
and once with two, in alternating order; nothing is shared between the two sides but the suite
file. Both sides pay their process starts (two for `--workers 2`: the parent and each worker),
so the suite is long enough (about two minutes on one core) that the ratio says what a real
suite of runs gets, not what starting Python costs.

Run with `nox -s bench` (or `python benchmarks/suite_throughput.py`). Prints each repeat, the
runs per hour of both and their ratio (target on a 2-core CPU: >= 1.7x). Run it alone: another
job on the cores changes both sides unevenly.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = """
[suite]
name = "throughput"
seeds = [0, 1, 2, 3]

[data]
name = "8gaussians"

[defaults]
architecture = "mlp"
width = 128  # one thread is as fast as two here: processes, not threads, use the second core
z_dim = 2
batch_size = 256
steps = {steps}
eval_every = {steps}
eval_samples = 256

[[run]]
name = "gan"
objective = "gan"
n_critic = 1
optimizer = "adam"
lr = 2e-4
betas = [0.5, 0.999]

[[run]]
name = "wgan"
objective = "wgan"
clip = 0.01
n_critic = 5
optimizer = "rmsprop"
lr = 5e-5

[[run]]
name = "wgan-gp"
objective = "wgan-gp"
gp_lambda = 0.1
n_critic = 5
optimizer = "adam"
lr = 1e-4
betas = [0.5, 0.9]
"""
RUNS = 12


def one_suite(suite: Path, workers: int) -> float:
    """Wall seconds of one `harness run` of the suite into a new folder, process start included."""
    with tempfile.TemporaryDirectory() as results:
        command = [sys.executable, "-m", "harness", "run", str(suite), "--results", results]
        command += ["--workers", str(workers), "--quiet"]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="generator steps per run")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        suite = Path(folder) / "throughput.toml"
        suite.write_text(SUITE.format(steps=args.steps))
        seconds: dict[int, list[float]] = {1: [], 2: []}
        for repeat in range(args.repeats):
            order = (1, 2) if repeat % 2 == 0 else (2, 1)
            for workers in order:
                seconds[workers].append(one_suite(suite, workers))
            print(
                f"repeat {repeat}: --workers 1 {seconds[1][-1]:.1f} s, "
                f"--workers 2 {seconds[2][-1]:.1f} s",
                flush=True,
            )
    rate = {w: RUNS * 3600 / statistics.median(s) for w, s in seconds.items()}
    pairs = [a / b for a, b in zip(seconds[1], seconds[2], strict=True)]
    print(
        f"suite of {RUNS} runs x {args.steps} steps, width 128: "
        f"--workers 1 {rate[1]:.0f} runs/h, --workers 2 {rate[2]:.0f} runs/h; "
        f"ratio {statistics.median(pairs):.2f}x (median of {len(pairs)} pairs, "
        f"min {min(pairs):.2f}, max {max(pairs):.2f}; target >= 1.7x)"
    )


if __name__ == "__main__":
    main()
