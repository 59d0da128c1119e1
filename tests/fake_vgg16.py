"""Random-init VGG16 weights in the format torch-fidelity's `vgg16` extractor loads from
`feature_extractor_weights_path` (a torchvision `vgg16()` state dict, saved with torch.save), so
precision and recall run offline.

torchvision's own initialisation (He-normal convolutions, N(0, 0.01) linear layers) keeps the
fc2 features of order 0.1 with about half of them positive: meaningless as numbers, but they
tell image sets apart. The file is the full network, about 530 MB: build it once per session.
"""

from pathlib import Path

import torch
import torchvision


def write_random_vgg16(path: Path, seed: int = 0) -> str:
    torch.manual_seed(seed)
    torch.save(torchvision.models.vgg16().state_dict(), path)
    return str(path)
