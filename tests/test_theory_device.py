"""The theory experiments run on the device they are given (issue 15), checked without a GPU.

Each experiment runs on PyTorch's `meta` device, where tensors have a shape and no data. A
tensor left on the CPU meets a meta one in some op and fails there, as it would beside a CUDA
tensor; the host reads (`.item()`, `.cpu()`) get stand-in values; every random generator made
and every critic update is recorded, so an experiment that ignores its device fails too.
"""

import pytest
import torch
from torch.overrides import TorchFunctionMode

import harness.theory.critics as critics
from harness.theory import learning_a_line, optimal_critic, parallel_lines
from harness.theory.settings import ExperimentSpec

META = torch.device("meta")
REAL_GENERATOR = torch.Generator


class MetaGenerator(REAL_GENERATOR):
    """A CPU generator that says it is on meta: PyTorch makes no meta generator, and the meta
    kernels draw nothing, so this one is never read; the draws land where `.device` says."""

    device = META


class HostReads(TorchFunctionMode):
    """`.item()` and `.cpu()` of a meta tensor get stand-ins (0.25, zeros of its shape) and are
    counted; `.numpy()` of one still fails, as for a CUDA tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.item, torch.Tensor.cpu) and args[0].device == META:
            self.count += 1
            if func is torch.Tensor.item:
                return 0.25
            return torch.zeros(args[0].shape, dtype=args[0].dtype)
        return func(*args, **kwargs)


@pytest.fixture
def seen(monkeypatch):
    """Records the device of every torch.Generator made and of every critic update's critic
    parameters and batches; a generator asked for on meta is a MetaGenerator."""
    record: dict[str, list] = {"generators": [], "updates": []}

    class Recording(REAL_GENERATOR):  # a class, not a function: torch annotates with it
        def __new__(cls, device: str | torch.device = "cpu") -> torch.Generator:
            record["generators"].append(torch.device(device))
            return MetaGenerator() if torch.device(device) == META else REAL_GENERATOR(device)

    update = critics.critic_update

    def recorded_update(objective, critic, opt, real_scores, fake_scores, real, fake, rng):
        devices = {p.device for p in critic.parameters()} | {real.device, fake.device}
        record["updates"].append(devices)
        return update(objective, critic, opt, real_scores, fake_scores, real, fake, rng)

    monkeypatch.setattr(torch, "Generator", Recording)
    monkeypatch.setattr(critics, "critic_update", recorded_update)
    return record


SMALL = {"critic_steps": 3, "batch_size": 4, "width": 8}
EXPERIMENTS = [  # (module, settings, critic updates expected, rows expected)
    (parallel_lines, {"kind": "parallel-lines", "thetas": [0.0, 1.5], "samples": 8}, 2 * 3 * 3, 6),
    (optimal_critic, {"kind": "optimal-critic", "grid": 5}, 3 * 3, 3 * 5),
    (learning_a_line, {"kind": "learning-a-line", "steps": 2, "n_critic": 2}, 3 * 2 * 2, 3 * 3),
]


def run_on_meta(module, table: dict) -> tuple:
    spec = ExperimentSpec(name=table["kind"], seed=0, settings=SMALL | table)
    with HostReads() as reads:
        frame = module.run(spec, META)
    return frame, reads.count


def assert_ran_on_meta(seen: dict, host_reads: int, updates: int) -> None:
    assert host_reads > 0, "nothing was read back from the device"
    assert seen["generators"] and set(seen["generators"]) == {META}
    assert len(seen["updates"]) == updates  # every objective's critic, every update
    assert all(devices == {META} for devices in seen["updates"]), seen["updates"]


@pytest.mark.parametrize(("module", "table", "updates", "rows"), EXPERIMENTS)
def test_each_experiment_runs_on_the_device_it_is_given(seen, module, table, updates, rows):
    frame, host_reads = run_on_meta(module, table)
    assert len(frame) == rows
    assert_ran_on_meta(seen, host_reads, updates)


def test_an_experiment_that_ignores_its_device_fails_the_check(seen):
    """The check itself: parallel lines run on the CPU whatever device is asked for."""

    class OnTheCpu:
        @staticmethod
        def run(spec, device):
            return parallel_lines.run(spec, torch.device("cpu"))

    _, table, updates, rows = EXPERIMENTS[0]
    frame, host_reads = run_on_meta(OnTheCpu, table)
    assert len(frame) == rows  # it ran to the end, on the CPU
    with pytest.raises(AssertionError, match="nothing was read back"):
        assert_ran_on_meta(seen, host_reads, updates)
    assert set(seen["generators"]) == {torch.device("cpu")}
