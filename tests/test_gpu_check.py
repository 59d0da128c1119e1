"""The GPU check's CPU smoke: every stage of benchmarks/gpu_check.py runs at toy sizes on the CPU
and prints its figures, so the scarce GPU hour it is written for is spent measuring, not
debugging it (docs/gpu.md)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"
STAGES = range(1, 8)
NUMBER = r"(\d+(?:\.\d+)?)"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, str, str]:
    """One `gpu_check.py --cpu-smoke --out FILE`: exit code, stdout, stderr, the file."""
    out = tmp_path_factory.mktemp("gpu-check") / "check.txt"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu-smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    written = out.read_text() if out.exists() else ""
    return result.returncode, result.stdout, result.stderr, written


def block(stdout: str, n: int) -> str:
    """Stage n's block: from its header to its own closing line."""
    found = re.search(rf"^== stage {n}: .*?^stage {n}: \w+.*?$", stdout, re.S | re.M)
    assert found, f"no block for stage {n} in:\n{stdout[-3000:]}"
    return found.group(0)


def test_every_stage_prints_its_block_and_ends_ok(smoke):
    code, stdout, stderr, written = smoke
    summary = stdout.partition("== summary ==")[2]
    for n in STAGES:
        assert re.search(rf"^stage {n}: ok in {NUMBER} s", block(stdout, n), re.M), block(stdout, n)
        assert re.search(rf"^stage {n} .* ok +{NUMBER} s", summary, re.M), summary
    assert code == 0, stdout[-3000:] + stderr[-3000:]
    assert "gpu_check: all ok" in stdout
    assert written == stdout  # --out


def test_each_stage_prints_its_figures(smoke):
    stdout = smoke[1]
    environment = block(stdout, 1)
    for name in ("harness", "pydantic", "POT", "torch-fidelity", "optuna", "numpy", "pandas"):
        assert re.search(rf"^{name} \d", environment, re.M), environment
    assert re.search(r"^CPU: .+, \d+ cores", environment, re.M)
    assert re.search(r"the GPU sizes' \d+ runs .* validate", environment)

    syncs = block(stdout, 2)
    assert "sync debug not armed (no CUDA)" in syncs
    for objective in ("gan", "wgan", "wgan-gp"):
        assert re.search(rf"^{objective} +dcgan: .*no other host sync", syncs, re.M), syncs

    rates = re.findall(rf"^  (dcgan|resnet) +(\S+) +{NUMBER} steps/s", block(stdout, 3), re.M)
    assert {(a, o) for a, o, _ in rates} == {
        (a, o) for a in ("dcgan", "resnet") for o in ("gan", "wgan", "wgan-gp")
    }
    assert all(float(rate) > 0 for _, _, rate in rates)
    budget = block(stdout, 3)
    assert re.search(rf"suites/cifar.toml: 9 runs, {NUMBER} h", budget)
    assert re.search(rf"suites/cifar-resnet.toml: 3 runs, {NUMBER} h", budget)
    assert re.search(r"wgan: 100000 generator steps, 521280 critic updates", budget)  # bursts

    evals = block(stdout, 4)
    one_eval = rf"^one eval, \d+ samples.*: {NUMBER} s; peak GPU memory"
    assert len(re.findall(one_eval, evals, re.M)) == 2, evals
    assert "(the final eval)" in evals
    assert re.search(rf"^  Inception features +: +{NUMBER} s", evals, re.M)
    assert re.search(rf"^real side, .*: {NUMBER} s", evals, re.M)

    throughput = block(stdout, 5)
    found = rf"--workers 1: 2 runs in +{NUMBER} s, +{NUMBER} runs/hour, +{NUMBER}"
    assert re.search(found + r" generator steps/s together \(end to end", throughput)
    assert re.search(rf"evals waited {NUMBER} s for their turns", throughput)
    assert "runs/hour against --workers 1: --workers 1: 1.00x" in throughput
    assert re.search(r"^most runs/hour: --workers 1$", throughput, re.M)
    assert "eval turns on cpu: none" in block(stdout, 1)
    assert "float32 matmul precision as inductor reads it: highest" in block(stdout, 1)

    resume = block(stdout, 6)
    for label in ("deterministic",):  # the smoke's one setting: the other is no flag
        assert re.search(rf"{label}: {NUMBER} steps/s", resume), resume
        assert re.search(
            rf"{label}: resumed against straight at step 12: "
            r"bit-exact",  # on a CPU a resumed run is bit-exact: else the comparison is broken
            resume,
        ), resume

    compiled = re.search(r"wgan-gp +mlp: compiles (\d+), recompiles (\d+)", block(stdout, 7))
    assert compiled, block(stdout, 7)
    assert int(compiled[1]) >= 2 and 0 <= int(compiled[2]) < int(compiled[1])


@pytest.mark.skipif(torch.cuda.is_available(), reason="refuses only where there is no CUDA")
def test_without_cuda_the_gpu_check_refuses_in_one_line():
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "--cpu-smoke" in lines[0], result
    assert result.stdout == ""
