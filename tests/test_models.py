"""The image architectures: shapes, per-sample critics, the registry's normalisation metadata."""

import types

import pytest
import torch
from torch import nn

from harness.models import ARCHITECTURES, build_models, check_critic_norm

IMAGE_CASES = [
    (arch, norm) for arch in ("dcgan", "resnet") for norm in ARCHITECTURES[arch].critic_norms
]
NORM_MODULES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)


def spec(
    arch: str, norm: str = "none", width: int = 8, z_dim: int = 16, init: str = "paper"
) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        architecture=arch, width=width, z_dim=z_dim, critic_norm=norm, objective="wgan-gp",
        init=init,
    )  # fmt: skip


def models(arch: str, norm: str, shape: tuple[int, int, int]) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return build_models(spec(arch, norm), shape)


def test_registry_records_critic_norms():
    assert ARCHITECTURES["mlp"].critic_norms == ("none",)
    assert ARCHITECTURES["dcgan"].critic_norms == ("batch", "layer", "none")
    assert ARCHITECTURES["resnet"].critic_norms == ("layer", "none")


@pytest.mark.parametrize(("arch", "norm"), IMAGE_CASES)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("side", [16, 32])
def test_shapes_and_range(arch, norm, channels, side):
    g, d = models(arch, norm, (channels, side, side))
    z = torch.randn(4, 16)
    x = g(z)
    assert x.shape == (4, channels, side, side)
    assert x.abs().max() <= 1.0
    assert x.std() > 0  # not a constant image
    scores = d(x)
    assert scores.shape == (4,)
    assert torch.isfinite(scores).all()


def input_grad_of_first_score(d: nn.Module, shape: tuple[int, int, int]) -> torch.Tensor:
    x = torch.randn(3, *shape, requires_grad=True)
    (grad,) = torch.autograd.grad(d(x)[0], x)
    return grad


@pytest.mark.parametrize(("arch", "norm"), [c for c in IMAGE_CASES if c[1] != "batch"])
def test_critic_is_per_sample(arch, norm):
    _, d = models(arch, norm, (3, 16, 16))
    grad = input_grad_of_first_score(d.train(), (3, 16, 16))
    assert grad[0].abs().sum() > 0
    assert torch.all(grad[1:] == 0)


def test_batch_norm_critic_mixes_samples():
    """Why WGAN-GP forbids batch norm: in training, score i depends on sample j."""
    _, d = models("dcgan", "batch", (3, 16, 16))
    grad = input_grad_of_first_score(d.train(), (3, 16, 16))
    assert grad[1:].abs().sum() > 0


def test_normalisation_modules():
    g, d = models("resnet", "none", (3, 16, 16))
    assert not any(isinstance(m, NORM_MODULES) for m in d.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    _, d = models("resnet", "layer", (3, 16, 16))
    assert any(isinstance(m, nn.GroupNorm) for m in d.modules())
    _, d = models("dcgan", "none", (3, 16, 16))
    assert not any(isinstance(m, NORM_MODULES) for m in d.modules())
    _, d = models("dcgan", "batch", (3, 16, 16))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 2


@pytest.mark.parametrize(
    ("arch", "norm", "offered"),
    [("mlp", "batch", "'none'"), ("resnet", "batch", "'layer', 'none'")],
)
def test_unsupported_critic_norm(arch, norm, offered):
    with pytest.raises(ValueError, match=f"supports critic_norm {offered} only"):
        check_critic_norm(arch, norm)


SUPPORTED = {  # written out here, not read from the registry the check itself reads
    ("mlp", "none"),  # gan_toy.py: no normalisation
    ("dcgan", "batch"),
    ("dcgan", "layer"),
    ("dcgan", "none"),
    ("resnet", "layer"),
    ("resnet", "none"),
}


def accepts(arch: str, norm: str) -> bool:
    try:
        check_critic_norm(arch, norm)
    except ValueError:
        return False
    return True


def test_supported_critic_norms_pass_and_no_others():
    """Every architecture against every normalisation any of them offers: the check passes
    exactly the supported pairs (and says which it refuses, as test_unsupported_critic_norm
    shows)."""
    norms = {norm for _, norm in SUPPORTED} | {"spectral"}
    assert {arch for arch, _ in SUPPORTED} == set(ARCHITECTURES)
    passed = {(arch, norm) for arch in ARCHITECTURES for norm in norms if accepts(arch, norm)}
    assert passed == SUPPORTED


def test_unknown_architecture_lists_known():
    with pytest.raises(ValueError, match="known: dcgan, mlp, resnet"):
        check_critic_norm("vgg", "none")


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
@pytest.mark.parametrize("shape", [(3, 12, 12), (3, 16, 24), (3, 4, 4)])
def test_bad_image_side(arch, shape):
    with pytest.raises(ValueError, match="divisible by 8"):
        build_models(spec(arch), shape)


@pytest.mark.parametrize(("arch", "norm"), IMAGE_CASES)
def test_gradient_penalty_double_backward(arch, norm):
    _, d = models(arch, norm, (3, 16, 16))
    x = torch.randn(3, 3, 16, 16, requires_grad=True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    penalty.backward()
    # every weight reaches the penalty (the final bias does not: it drops out of the gradient)
    grads = [p.grad for name, p in d.named_parameters() if name.endswith("weight")]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    first_conv = next(m for m in d.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(("arch", "norm"), IMAGE_CASES)
def test_channels_last_matches(arch, norm):
    g, d = models(arch, norm, (3, 16, 16))
    g.eval()
    d.eval()
    x = g(torch.randn(4, 16))
    expected = d(x)
    d = d.to(memory_format=torch.channels_last)
    got = d(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("arch", "norm"), IMAGE_CASES)
def test_autocast(arch, norm):
    g, d = models(arch, norm, (3, 16, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = g(torch.randn(4, 16))
        scores = d(x)
    assert x.shape == (4, 3, 16, 16) and scores.shape == (4,)
    assert torch.isfinite(scores.float()).all()


# The scales of the reference code's layers, worked out by hand from tflib's formulas (uniform on
# +-std sqrt(3); He: std = sqrt(4 / (fan_in + fan_out)), Glorot: sqrt(2 / (fan_in + fan_out));
# conv fan_out = out k^2 / stride^2, transposed conv fan_in = in k^2 / stride^2).
PAPER_SCALES = [  # (architecture, width, "G" or "D", path to the layer, std)
    ("mlp", 512, "D", "net.2", (2 / 512) ** 0.5),  # gan_toy.py's ReLULayer: 'he'
    ("mlp", 512, "G", "net.0", (2 / 2) ** 0.5),
    ("mlp", 512, "G", "net.6", (2 / (512 + 2)) ** 0.5),  # the output Linear: Glorot
    ("dcgan", 128, "D", "net.2", (4 / (128 * 25 + 256 * 25 / 4)) ** 0.5),  # 5x5 stride 2
    ("dcgan", 128, "G", "net.0", (4 / (512 * 25 / 4 + 256 * 25)) ** 0.5),  # transposed
    ("dcgan", 128, "G", "input.0", (2 / (128 + 128 * 64)) ** 0.5),  # Linear to 4*DIM x 4 x 4
    ("resnet", 128, "D", "blocks.1.main.2", (4 / (128 * 9 + 128 * 9)) ** 0.5),  # 3x3: 0.042
    ("resnet", 128, "D", "first_shortcut.conv", (2 / (3 + 128)) ** 0.5),  # 1x1, he_init=False
    ("resnet", 128, "G", "blocks.0.shortcut.conv", (2 / (128 + 128)) ** 0.5),
    ("resnet", 128, "G", "output.2", (2 / (128 * 9 + 3 * 9)) ** 0.5),  # he_init=False there
]


@pytest.mark.parametrize(("arch", "width", "which", "path", "std"), PAPER_SCALES)
def test_paper_init_has_the_reference_codes_scales(arch, width, which, path, std):
    torch.manual_seed(0)
    shape = (2,) if arch == "mlp" else (3, 32, 32)
    G, D = build_models(spec(arch, width=width, z_dim=2 if arch == "mlp" else 128), shape)
    layer = (G if which == "G" else D).get_submodule(path)
    w = layer.weight.detach()
    assert w.abs().max().item() <= std * 3**0.5 + 1e-7  # uniform on +-std sqrt(3)
    assert w.abs().max().item() > 0.95 * std * 3**0.5  # and reaching its ends
    assert w.std().item() == pytest.approx(std, rel=0.05 if w.numel() > 1000 else 0.2)
    assert layer.bias is None or layer.bias.abs().max().item() == 0


def test_paper_init_zeroes_every_bias_and_torch_init_keeps_pytorchs():
    torch.manual_seed(0)
    for arch, shape in (("dcgan", (3, 32, 32)), ("resnet", (3, 32, 32)), ("mlp", (2,))):
        G, D = build_models(spec(arch, width=16), shape)
        for m in (*G.modules(), *D.modules()):
            if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
                assert m.bias is None or not m.bias.any()
            if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d | nn.LayerNorm):
                assert (m.weight == 1).all() and not m.bias.any()
    _, D = build_models(spec("resnet", width=128, init="torch"), (3, 32, 32))
    conv = D.get_submodule("blocks.1.main.2")
    assert conv.weight.std().item() == pytest.approx((1 / (3 * 128 * 9)) ** 0.5, rel=0.05)
    assert conv.bias.abs().max().item() > 0  # PyTorch's uniform biases
