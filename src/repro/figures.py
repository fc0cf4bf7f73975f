"""Every paper's figures are drawn and saved the same way: one seaborn theme, the Agg
backend (no display on cluster nodes), PNG at one dpi for the report and PDF for print,
and a figure that says "no data" instead of failing when every run was skipped."""

from __future__ import annotations

from pathlib import Path

DPI = 150
_READY = False


def pyplot():
    """matplotlib.pyplot on the Agg backend with the shared seaborn theme (set once).
    Imported lazily: building the workflow's DAG never imports matplotlib."""
    global _READY
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not _READY:
        import seaborn as sns

        sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
        _READY = True
    return plt


def save_figure(fig, stem) -> list[str]:
    """Write ``<stem>.png`` (DPI) and ``<stem>.pdf`` (a .png/.pdf suffix on `stem` is
    ignored), close the figure, return both paths."""
    plt = pyplot()
    stem = Path(stem)
    stem = stem.with_suffix("") if stem.suffix.lower() in (".png", ".pdf") else stem
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [str(stem.with_suffix(".png")), str(stem.with_suffix(".pdf"))]
    fig.savefig(paths[0], dpi=DPI, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def empty_axes(ax, message: str = "no data") -> None:
    """Say `message` in the middle of `ax` and hide its ticks."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_axis_off()


def empty_figure(title: str, message: str = "no data (every run skipped or not measured)"):
    """A small figure that says why there is nothing to draw."""
    fig, ax = pyplot().subplots(figsize=(5, 3))
    empty_axes(ax, message)
    ax.set_title(title)
    return fig
