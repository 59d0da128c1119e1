"""Image speed: the harness against plain PyTorch, on CIFAR-shaped data, in this one process.

1. Training: generator steps/s of WGAN-GP (5 critic steps, lambda 10, Adam 1e-4 betas (0, 0.9),
   batch 64) with the `dcgan` and `resnet` networks. The plain loop is written the way the
   public PyTorch port of gan_cifar.py is: a persistent shuffling DataLoader over the training
   set converting one image at a time, fp32 under PyTorch's default flags (put back before each
   plain measurement), unfused Adam, and its three losses read with .item() once per generator
   step. The harness runs its own `train` with recording on (TF32, channels_last and fused
   Adam where CUDA is present). Both are timed between CUDA synchronisations, after a warm-up.
2. Evaluation: images/s of FID + IS + KID on N generated images, the harness feeding the
   generated images to torch-fidelity's extractor directly against "write N PNGs, then
   torch-fidelity on the folder", with the same Inception batch size; the reference statistics
   are cached for both.

Data: random CIFAR-shaped images in CIFAR-10's on-disk format (no download), the same training
set for both loops; Inception weights: random-init unless --feature-weights is given (speed does
not depend on the weights' values). Run with `nox -s bench` (or `python
benchmarks/image_step.py`). Prints what each side does, its rates and the ratios.
"""

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch_fidelity
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from harness.evaluate.fidelity import Fidelity, UInt8Images, to_uint8
from harness.evaluate.images import generate
from harness.evaluate.real_side import real_side
from harness.models import build_models
from harness.precision import set_tf32
from harness.records import RunFolder
from harness.spec import RunSpec
from harness.train import LOG_EVERY, RunOptions, train

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fake_cifar import fake_cifar10_arrays, write_fake_cifar10  # noqa: E402  (the tests' writer)
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
        sample_bn_stats="batch",
    )


class PerImage(Dataset[torch.Tensor]):
    """As ports feed CIFAR-10: one image at a time converted to floats in [-1, 1]."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i].float() / 127.5 - 1


def forever(loader: DataLoader) -> Iterator[torch.Tensor]:
    while True:
        yield from loader


def pytorch_defaults() -> None:
    """The flags a plain script runs with; the harness's set_backend_flags() changes them
    process-wide, so they are put back before every plain measurement."""
    set_tf32(matmul=False, conv=True)  # PyTorch's own defaults: TF32 for convolutions only
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = False
    torch.use_deterministic_algorithms(False)


def plain_loop(spec: RunSpec, warm: int, images: torch.Tensor, device: torch.device) -> float:
    """Generator steps/s of a reference-style WGAN-GP loop from step `warm` to spec.steps: a
    persistent shuffling DataLoader over the training set, fp32, PyTorch's default flags,
    unfused Adam, and the three losses read with .item() once per generator step, as the
    public PyTorch port of gan_cifar.py logs them."""
    pytorch_defaults()
    torch.manual_seed(0)
    G, D = (m.to(device) for m in build_models(spec, (3, 32, 32)))
    opt_g = torch.optim.Adam(G.parameters(), lr=LR, betas=BETAS)
    opt_d = torch.optim.Adam(D.parameters(), lr=LR, betas=BETAS)
    cuda = device.type == "cuda"
    loader = DataLoader(
        PerImage(images),
        BATCH,
        shuffle=True,
        drop_last=True,
        num_workers=4 if cuda else 0,
        pin_memory=cuda,
        persistent_workers=cuda,
    )

    data, log = forever(loader), []
    for step in range(1, spec.steps + 1):
        if step == warm + 1:
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
        for p in D.parameters():
            p.requires_grad = False
        G.zero_grad()
        g_cost = -D(G(torch.randn(BATCH, Z_DIM, device=device))).mean()
        g_cost.backward()
        opt_g.step()
        log.append((d_cost.item(), (d_real - d_fake).item(), g_cost.item()))
    _sync(device)
    seconds = time.perf_counter() - start
    del data, loader  # its worker processes end here, not during the harness's measurement
    gc.collect()
    return (spec.steps - warm) / seconds


def harness_loop(
    spec: RunSpec, warm: int, weights: str, device: torch.device, cache: Path
) -> float:
    """Generator steps/s of the harness's own `train` (recording on: TF32, channels_last and
    fused Adam where CUDA is present), timed between its host syncs at steps `warm` and
    spec.steps (it syncs every `warm` steps); the evals at step 0 and at the end fall outside."""
    marks: dict[int, float] = {}

    def progress(step: int, latest: dict[str, float]) -> None:
        if step in (warm, spec.steps):
            _sync(device)
            marks[step] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        folder = RunFolder(Path(tmp) / spec.run_id)
        folder.create()
        timed = spec.model_copy(update={"steps": spec.steps + warm})  # the last eval after
        with (
            mock.patch.dict("os.environ", {"HARNESS_CACHE": str(cache)}),
            mock.patch("harness.train.LOG_EVERY", warm),
        ):
            train(timed, folder, device, progress, RunOptions(feature_weights=weights))
    return (spec.steps - warm) / (marks[spec.steps] - marks[warm])


def eval_rates(
    spec: RunSpec, images: torch.Tensor, n: int, weights: str, device: torch.device
) -> tuple[float, float, int]:
    """Images/s of FID+IS+KID: the harness's direct path and the PNG-folder path, with the same
    Inception batch size and the reference statistics cached for both, under PyTorch's default
    flags (the harness's Inception runs in full fp32 whatever they are)."""
    pytorch_defaults()
    G, _ = (m.to(device).eval() for m in build_models(spec, (3, 32, 32)))
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        fidelity = Fidelity(images, "bench", device, weights, cache)  # caches the reference
        batch = fidelity.options["batch_size"]
        _sync(device)
        start = time.perf_counter()
        fake, _ = generate(G, Z_DIM, n, seed=0, device=device, keep=1, bn_stats="running")
        fidelity.metrics(fidelity.features(fake), seed=0)
        _sync(device)
        direct = n / (time.perf_counter() - start)

        _sync(device)
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
            batch_size=batch,
            feature_extractor_weights_path=weights,
            verbose=False,
        )
        _sync(device)
        via_png = n / (time.perf_counter() - start)
    return direct, via_png, batch


def eval_breakdown(spec: RunSpec, weights: str, device: torch.device, cache: Path) -> None:
    """Where one eval of a run's time goes (its second eval: the first pays for warm-up)."""
    from harness.data import build_sampler
    from harness.evaluate import build_evaluator
    from harness.objectives import build_objective

    with (
        mock.patch.dict("os.environ", {"HARNESS_CACHE": str(cache)}),
        tempfile.TemporaryDirectory() as tmp,
    ):
        data = build_sampler(spec.data, device)
        G, D = (m.to(device) for m in build_models(spec, data.shape))
        _sync(device)
        start = time.perf_counter()
        real_side(spec, data, device, weights)  # type: ignore[arg-type]
        _sync(device)
        once = time.perf_counter() - start
        objective = build_objective(spec.objective, spec.model_dump())
        folder = RunFolder(Path(tmp) / "run")
        folder.create()
        evaluate = build_evaluator(spec, data, objective, folder, device, weights)
        for step in (1, 2):
            row = evaluate(step, G, D)
    seconds = evaluate.phases.seconds  # type: ignore[attr-defined]
    total = row["eval_seconds"]
    n_w = len(spec.projections or ()) * len(spec.projection_dims or ())
    print(
        f"one eval, {spec.fid_samples} samples for FID/IS/KID, {spec.eval_samples} for exact W "
        f"on {n_w} projections: {total:.2f} s"
    )
    for name, value in seconds.items():
        print(f"  {name:<36}: {value:7.3f} s  {100 * value / total:5.1f}%")
    other = total - sum(seconds.values())
    rest = "the rest (indexing, samples to numpy)"
    print(f"  {rest:<36}: {other:7.3f} s  {100 * other / total:5.1f}%")
    print(
        f"once per suite and device, shared by its runs (reference features from torch-fidelity's "
        f"cache, PCA fits, the real draw projected, floors): {once:.2f} s"
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _list(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"


def main() -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200 if cuda else 5, help="timed + warm-up")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eval-images", type=int, default=10_000 if cuda else 300)
    parser.add_argument("--width", type=int, default=128, help="DIM of both networks")
    parser.add_argument("--feature-weights", default=None)
    parser.add_argument("--w-samples", type=int, default=1024 if cuda else 100, help="W's n")
    args = parser.parse_args()
    device = torch.device("cuda" if cuda else "cpu")
    # The harness syncs with the host every LOG_EVERY steps: the windows start and end on those.
    # On the CPU there is nothing asynchronous to wait for, and every step is a sync point.
    warm = LOG_EVERY if cuda else 1
    steps = max(2 * warm, args.steps // warm * warm)
    n_train = 10_000 if cuda else 4 * BATCH
    name = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {name}")
    print(
        f"plain  : DataLoader over the {n_train} training images (4 workers on CUDA, persistent), "
        "fp32 with PyTorch's default flags, unfused Adam, 3 .item() per generator step"
    )
    print(
        "harness: its train() with recording: images on the device sampled by index, TF32, "
        "channels_last, fused Adam on CUDA; one host sync per "
        f"{LOG_EVERY if cuda else 1} steps"
    )
    print(f"timed  : steps {warm + 1}..{steps} of each loop, CUDA synchronised at both ends")
    with tempfile.TemporaryDirectory() as tmp:
        root = write_fake_cifar10(Path(tmp), n_train=n_train, n_test=100)
        train_rows, _ = fake_cifar10_arrays(n_train, 100)
        train_images = torch.from_numpy(train_rows.reshape(-1, 3, 32, 32))
        weights = args.feature_weights or write_random_inception(Path(tmp) / "inception.pth")
        shape = (args.eval_images, 3, 32, 32)  # the reference set, as many as generated
        images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, shape, np.uint8))
        for architecture in ("dcgan", "resnet"):
            spec = spec_for(architecture, args.width, steps, root)
            plain_loop(spec.model_copy(update={"steps": warm + 1}), warm, train_images, device)
            plain, ours = [], []
            for _ in range(args.repeats):  # back to back: drift in machine speed hits both
                plain.append(plain_loop(spec, warm, train_images, device))
                ours.append(harness_loop(spec, warm, weights, device, Path(tmp) / "cache"))
            ratios = [o / p for o, p in zip(ours, plain, strict=True)]
            median = statistics.median
            print(f"{architecture} WGAN-GP, batch {BATCH}, width {args.width}, {steps} steps:")
            print(f"  plain PyTorch loop : median {median(plain):7.2f} steps/s {_list(plain)}")
            print(f"  harness (recording): median {median(ours):7.2f} steps/s {_list(ours)}")
            print(f"  ratio harness/plain: median {median(ratios):7.2f} (target on a GPU: >= 2)")
        direct, via_png, batch = eval_rates(
            spec_for("dcgan", args.width, 1, root), images, args.eval_images, weights, device
        )
        print(f"evaluation, FID+IS+KID of {args.eval_images} images, Inception batch {batch}:")
        print(f"  PNG folder + torch-fidelity : {via_png:8.1f} images/s")
        print(f"  harness, generator fed      : {direct:8.1f} images/s")
        print(f"  ratio                       : {direct / via_png:8.2f}")
        breakdown = spec_for("dcgan", args.width, 10, root).model_copy(
            update={
                "fid_samples": args.eval_images,
                "fid_samples_final": args.eval_images,
                "eval_samples": args.w_samples,
                "projections": ("inception-pca", "pixel-pca", "random"),
                "projection_dims": (2, 8, 32),
            }
        )
        eval_breakdown(breakdown, weights, device, Path(tmp) / "cache")


if __name__ == "__main__":
    main()
