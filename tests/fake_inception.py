"""Random-init Inception weights in torch-fidelity's format, so FID / IS / KID run offline.

torch's default initialisation shrinks activations layer by layer until the pool features are
~1e-7 and every metric is trivially 0; He-normal convolutions keep them of order 1, so the
metrics (meaningless as numbers) still tell different image sets apart.
"""

from pathlib import Path
from unittest import mock

import torch
from torch import nn
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3


def write_random_inception(path: Path, seed: int = 0) -> str:
    module = "torch_fidelity.feature_extractor_inceptionv3"
    with (
        mock.patch(f"{module}.load_state_dict_from_url", lambda *a, **k: {}),
        mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None),
    ):
        torch.manual_seed(seed)
        model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for layer in model.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    torch.save(model.state_dict(), path)
    return str(path)
