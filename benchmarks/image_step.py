"""Image speed: the harness against plain PyTorch, on CIFAR-shaped data, in this one process.

1. Training: generator steps/s of WGAN-GP (5 critic steps, lambda 10, Adam 1e-4 betas (0, 0.9),
   batch 64) with the `dcgan` and `resnet` networks. The plain loop is written the way public
   PyTorch ports write it: a shuffling DataLoader converting one image at a time, fp32, the
   critic's losses read with .item() every iteration, unfused Adam. The harness runs its own
   `train` with recording on (TF32, channels_last and fused Adam where CUDA is present).
2. Evaluation: images/s of FID + IS + KID on N generated images, the harness feeding the
   generator to torch-fidelity directly against "write N PNGs, then torch-fidelity on the
   folder"; the reference statistics are cached for both.

Data: random CIFAR-shaped images in CIFAR-10's on-disk format (no download); Inception weights:
random-init unless --feature-weights is given (speed does not depend on the weights' values).
Run with `nox -s bench` (or `python benchmarks/image_step.py`). Prints rates and ratios.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch_fidelity
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from harness.evaluate.fidelity import Fidelity, UInt8Images, to_uint8
from harness.models import build_models
from harness.records import RunFolder
from harness.suite import RunSpec
from harness.train import RunOptions, train

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fake_cifar import write_fake_cifar10  # noqa: E402  (the tests' CIFAR-10 folder writer)
from fake_inception import write_random_inception  # noqa: E402

BATCH, N_CRITIC, GP_LAMBDA, LR, BETAS, Z_DIM = 64, 5, 10.0, 1e-4, (0.0, 0.9), 128


def spec_for(architecture: str, width: int, steps: int, root: Path) -> RunSpec:
    return RunSpec(
        name="bench",
        seed=0,
        data={"name": "cifar10", "root": str(root), "download": False},
        objective="wgan-gp",
        gp_lambda=GP_LAMBDA,
        n_critic=N_CRITIC,
        critic_schedule="constant",
        optimizer="adam",
        lr=LR,
        betas=BETAS,
        batch_size=BATCH,
        steps=steps,
        architecture=architecture,
        width=width,
        z_dim=Z_DIM,
        eval_every=None,
        eval_samples=10,
        fid_samples=10,
        fid_samples_final=10,
        projections=("random",),
        projection_dims=(2,),
    )


class PerImage(Dataset[torch.Tensor]):
    """As ports feed CIFAR-10: one image at a time converted to floats in [-1, 1]."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i].float() / 127.5 - 1


def plain_loop(spec: RunSpec, images: torch.Tensor, device: torch.device) -> float:
    """Seconds per generator step of a reference-style WGAN-GP loop (first step not timed)."""
    torch.manual_seed(0)
    G, D = (m.to(device) for m in build_models(spec, (3, 32, 32)))
    opt_g = torch.optim.Adam(G.parameters(), lr=LR, betas=BETAS)
    opt_d = torch.optim.Adam(D.parameters(), lr=LR, betas=BETAS)
    workers = 4 if device.type == "cuda" else 0
    loader = DataLoader(
        PerImage(images),
        BATCH,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )

    def batches():  # type: ignore[no-untyped-def]
        while True:
            yield from loader

    data, log = batches(), []
    for step in range(spec.steps + 1):
        if step == 1:
            _sync(device)
            start = time.perf_counter()
        for p in D.parameters():
            p.requires_grad = True
        for _ in range(N_CRITIC):
            real = next(data).to(device)
            D.zero_grad()
            d_real = D(real).mean()
            with torch.no_grad():
                fake = G(torch.randn(BATCH, Z_DIM, device=device))
            d_fake = D(fake).mean()
            alpha = torch.rand(BATCH, 1, 1, 1, device=device)
            interp = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
            (grads,) = torch.autograd.grad(D(interp).sum(), interp, create_graph=True)
            gp = GP_LAMBDA * ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
            d_cost = d_fake - d_real + gp
            d_cost.backward()
            opt_d.step()
            log.append((d_cost.item(), (d_real - d_fake).item()))
        for p in D.parameters():
            p.requires_grad = False
        G.zero_grad()
        g_cost = -D(G(torch.randn(BATCH, Z_DIM, device=device))).mean()
        g_cost.backward()
        opt_g.step()
        log.append((g_cost.item(), 0.0))
    _sync(device)
    return (time.perf_counter() - start) / spec.steps


def harness_loop(spec: RunSpec, weights: str, device: torch.device, cache: Path) -> float:
    """Seconds per generator step of the harness's own `train` (evals excluded)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = RunFolder(Path(tmp) / spec.run_id)
        folder.create()
        timed = spec.model_copy(update={"steps": spec.steps + 1})
        with mock.patch.dict("os.environ", {"HARNESS_CACHE": str(cache)}):
            train(timed, folder, device, options=RunOptions(feature_weights=weights))
        wall = folder.read_steps()["wall_time"]  # type: ignore[index]
        return float(wall.iloc[-1] - wall.iloc[0]) / spec.steps  # from the end of step 1


def eval_rates(
    spec: RunSpec, images: torch.Tensor, n: int, weights: str, device: torch.device
) -> tuple[float, float]:
    """Images/s of FID+IS+KID: the harness's direct path and the PNG-folder path."""
    G, _ = (m.to(device).eval() for m in build_models(spec, (3, 32, 32)))
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        fidelity = Fidelity(images, "bench", device, weights, cache)  # caches the reference
        _sync(device)
        start = time.perf_counter()
        features, _ = fidelity.generated(G, Z_DIM, n, seed=0, keep=1, device=device)
        fidelity.metrics(features, seed=0)
        direct = n / (time.perf_counter() - start)

        start = time.perf_counter()
        folder = Path(tmp) / "pngs"
        folder.mkdir()
        with torch.no_grad():
            for i, z in enumerate(torch.randn(n, Z_DIM, device=device).split(250)):
                for j, image in enumerate(to_uint8(G(z)).permute(0, 2, 3, 1).cpu().numpy()):
                    Image.fromarray(image).save(folder / f"{i * 250 + j:06d}.png")
        torch_fidelity.calculate_metrics(
            input1=str(folder),
            input2=UInt8Images(images),
            input2_cache_name=fidelity.reference_name,
            cache_root=str(cache),
            isc=True,
            fid=True,
            kid=True,
            kid_subset_size=min(1000, n),
            cuda=device.type == "cuda",
            feature_extractor_weights_path=weights,
            verbose=False,
        )
        via_png = n / (time.perf_counter() - start)
    return direct, via_png


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _list(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"


def main() -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200 if cuda else 4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eval-images", type=int, default=10_000 if cuda else 300)
    parser.add_argument("--width", type=int, default=128, help="DIM of both networks")
    parser.add_argument("--feature-weights", default=None)
    args = parser.parse_args()
    device = torch.device("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {name}")
    with tempfile.TemporaryDirectory() as tmp:
        root = write_fake_cifar10(Path(tmp), n_train=4 * BATCH, n_test=100)
        weights = args.feature_weights or write_random_inception(Path(tmp) / "inception.pth")
        shape = (args.eval_images, 3, 32, 32)  # the reference set, as many as generated
        images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, shape, np.uint8))
        for architecture in ("dcgan", "resnet"):
            spec = spec_for(architecture, args.width, args.steps, root)
            plain_loop(spec.model_copy(update={"steps": 1}), images, device)  # warm up
            plain, ours = [], []
            for _ in range(args.repeats):  # back to back: drift in machine speed hits both
                plain.append(1 / plain_loop(spec, images, device))
                ours.append(1 / harness_loop(spec, weights, device, Path(tmp) / "cache"))
            ratios = [o / p for o, p in zip(ours, plain, strict=True)]
            median = statistics.median
            print(f"{architecture} WGAN-GP, batch {BATCH}, width {args.width}, {args.steps} steps:")
            print(f"  plain PyTorch loop : median {median(plain):7.2f} steps/s {_list(plain)}")
            print(f"  harness (recording): median {median(ours):7.2f} steps/s {_list(ours)}")
            print(f"  ratio harness/plain: median {median(ratios):7.2f} (target on a GPU: >= 2)")
        direct, via_png = eval_rates(
            spec_for("dcgan", args.width, 1, root), images, args.eval_images, weights, device
        )
        print(f"evaluation, FID+IS+KID of {args.eval_images} generated images:")
        print(f"  PNG folder + torch-fidelity : {via_png:8.1f} images/s")
        print(f"  harness, generator fed      : {direct:8.1f} images/s")
        print(f"  ratio                       : {direct / via_png:8.2f}")


if __name__ == "__main__":
    main()
