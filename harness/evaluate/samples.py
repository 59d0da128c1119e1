"""Pictures of a run's eval samples: a scatter of real against generated points (2-D data)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def scatter_png(path: Path, real: np.ndarray, fake: np.ndarray, title: str) -> None:
    fig, ax = plt.subplots(figsize=(4, 4), dpi=90)
    ax.scatter(real[:, 0], real[:, 1], s=3, c="0.6", label="real", linewidths=0)
    ax.scatter(fake[:, 0], fake[:, 1], s=3, c="tab:orange", label="generated", linewidths=0)
    lim = float(np.quantile(np.abs(real), 0.999)) * 1.3 + 1e-6
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=title)
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
