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


def spec(arch: str, norm: str = "none", width: int = 8, z_dim: int = 16) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        architecture=arch, width=width, z_dim=z_dim, critic_norm=norm, objective="wgan-gp"
    )


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


def test_supported_critic_norms_pass():
    for arch, norm in IMAGE_CASES + [("mlp", "none")]:
        check_critic_norm(arch, norm)


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
