"""TF32 on and off, in one place: training allows it on CUDA, the metrics' networks never use it.

Through torch's `fp32_precision` settings (torch >= 2.9; the `allow_tf32` flags are deprecated).
The matmul setting also goes to `torch.set_float32_matmul_precision`: inductor still reads that
older view while it compiles on CUDA, and torch refuses the read once the two views disagree
("mix of the legacy and new APIs", pytorch/pytorch#166387), which would fail `--compile`.
(Inductor reads convolutions' setting through the new API; the older cuDNN view agrees with it
while training allows TF32, and nothing compiles inside an eval, where it is off.)
"""

import torch

__all__ = ["set_tf32", "tf32_state"]


def set_tf32(matmul: bool, conv: bool) -> None:
    """TF32 for float32 matrix products (cuBLAS) and convolutions (cuDNN), on or off."""
    torch.backends.cuda.matmul.fp32_precision = "tf32" if matmul else "ieee"
    torch.backends.cudnn.conv.fp32_precision = "tf32" if conv else "ieee"  # type: ignore[attr-defined]
    torch.set_float32_matmul_precision("high" if matmul else "highest")  # the same, for readers


def tf32_state() -> tuple[bool, bool]:
    """(matmul, conv) as `set_tf32` takes them: what to put back after a change."""
    conv = torch.backends.cudnn.conv.fp32_precision  # type: ignore[attr-defined]
    return torch.backends.cuda.matmul.fp32_precision == "tf32", conv == "tf32"
