"""Saving figures the same way for every paper: PNG (150 dpi) for the report, PDF for print."""

from __future__ import annotations

from pathlib import Path


def save_figure(fig, stem) -> list[str]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` (a .png/.pdf suffix on `stem` is ignored),
    close the figure, return both paths."""
    import matplotlib.pyplot as plt

    stem = Path(stem)
    stem = stem.with_suffix("") if stem.suffix.lower() in (".png", ".pdf") else stem
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [str(stem.with_suffix(".png")), str(stem.with_suffix(".pdf"))]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths
