"""Paper A figures: one function per paper figure, each saved through repro.figures.

Every figure reads the tidy tables of :mod:`repro.iterative.tables`; seeds are drawn as
bands (mean, band = min-max range over seeds: bounded, so an accuracy band never leaves
0-100%); colours are fixed per variable so the same variant, split, example group or
unrolling scale has the same colour in every figure. Facets are models, named
"<experiment>/<run label>". A figure with no data says so instead of failing. The theme,
backend and dpi are the shared ones of :mod:`repro.figures`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from ..figures import empty_axes, empty_figure, pyplot, save_figure
from .plan import FIGURES

VARIANT_COLORS = {"unshared": "#1f77b4", "naive": "#d62728", "UBN": "#2ca02c"}
SPLIT_COLORS = {"train": "#1f77b4", "test": "#ff7f0e"}
GROUP_COLORS = {"borderline": "#d62728", "correct": "#2ca02c", "all": "#7f7f7f"}
BAND = ("pi", 100)  # min-max over seeds


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty or "metric" not in frame:
        return frame.iloc[0:0]
    f = frame[(frame["metric"] != "skipped") & frame["value"].notna()].copy()
    f["model"] = f["experiment"] + "/" + f["label"].astype(str)
    return f


def _scale_colors(scales) -> dict:
    scales = sorted(set(scales), reverse=True)
    colors = sns.color_palette("flare", max(len(scales), 1))
    return {s: colors[i] for i, s in enumerate(scales)}


def _stage_lines(g, frame: pd.DataFrame) -> None:
    """Dotted vertical lines before the first block of every stage after the first."""
    firsts = frame[(frame["position"] == 0) & (frame["stage"] > 0)]
    for model, ax in g.axes_dict.items():
        for b in firsts[firsts["model"] == model]["block"].unique():
            ax.axvline(b - 0.5, color="0.6", ls=":", lw=1)


def plot_block_metric(blocks: pd.DataFrame, metric: str, stem) -> list[str]:
    """Figure 'cosine' / 'norm_ratio': a block metric against block index, train and test."""
    pyplot()  # Agg backend and the shared theme before seaborn draws
    f = _ok(blocks)
    # the cosine figure shows the gradient at the block input (solid) and output (dashed), CLAIMS.md A1a
    f = f[f["metric"].isin(["cosine", "cosine_out"] if metric == "cosine" else [metric])]
    style = dict(style="metric", style_order=["cosine", "cosine_out"]) if metric == "cosine" else {}
    ylabel = {"cosine": "cos(F_i(h_i), ∂L/∂h) at block input / output  (dimensionless)",
              "norm_ratio": "‖F_i(h_i)‖₂ / ‖h_i‖₂  (dimensionless)"}[metric]
    title = {"cosine": "Residual vs loss gradient", "norm_ratio": "Relative size of each residual"}[metric]
    if f.empty:
        return save_figure(empty_figure(title), stem)
    g = sns.relplot(data=f, x="block", y="value", hue="split", palette=SPLIT_COLORS, col="model",
                    col_wrap=min(4, f["model"].nunique()), kind="line", marker="o", errorbar=BAND,
                    height=3.2, aspect=1.2, facet_kws=dict(sharex=False), **style)
    _stage_lines(g, f)
    for ax in g.axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if metric == "cosine":
        for ax in g.axes.flat:
            ax.axhline(0, color="k", lw=0.8)
    g.set_axis_labels("residual block i (dotted: new stage)", ylabel)
    g.set_titles("{col_name}")
    g.figure.suptitle(f"{title} (mean, band: range over seeds)", y=1.03)
    return save_figure(g.figure, stem)


def plot_drop(drop: pd.DataFrame, stem) -> list[str]:
    """Test accuracy with one block dropped; intact and shuffled networks as lines."""
    plt = pyplot()
    f = _ok(drop)
    f = f[f["metric"] == "accuracy"].assign(value=lambda d: 100 * d["value"])
    if f.empty:
        return save_figure(empty_figure("Dropping one block"), stem)
    models = sorted(f["model"].unique())
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.4), squeeze=False)
    for ax, model in zip(axes[0], models):
        m = f[f["model"] == model]
        d = m[m["kind"] == "drop"]
        sns.lineplot(data=d, x="block", y="value", marker="o", errorbar=BAND, ax=ax, color="#9467bd",
                     label="one block dropped")
        intact = m[m["kind"] == "intact"]["value"]
        ax.axhline(intact.mean(), color="k", lw=1.2, label=f"intact ({intact.mean():.1f}%)")
        shuf = m[m["kind"] == "shuffle"]["value"]
        if len(shuf):
            ax.axhline(shuf.mean(), color="0.4", ls="--", lw=1.2,
                       label=f"blocks shuffled within stages ({shuf.mean():.1f}%)")
        ax.set_title(model)
        ax.set_xlabel("dropped residual block i (forward order)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 101)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.suptitle("Drop one block: identity in place of F_i (mean, band: range over seeds)", y=1.02)
    return save_figure(fig, stem)


def plot_heads(heads: pd.DataFrame, stem, split: str = "test") -> list[str]:
    """Accuracy of the final classifier applied after each block of the last stage, over training."""
    pyplot()  # Agg backend and the shared theme before seaborn draws
    f = _ok(heads)
    f = f[(f["metric"] == "accuracy") & (f["split"] == split)].assign(value=lambda d: 100 * d["value"],
                                                                      position=lambda d: d["position"] + 1)
    if f.empty:
        return save_figure(empty_figure("Intermediate heads"), stem)
    epochs = sorted(f["epoch"].unique())
    palette = dict(zip(epochs, sns.color_palette("viridis", len(epochs))))
    g = sns.relplot(data=f, x="position", y="value", hue="epoch", palette=palette, col="model",
                    col_wrap=min(4, f["model"].nunique()), kind="line", marker="o", errorbar=BAND,
                    height=3.2, aspect=1.2, legend="full")
    g.set_axis_labels("block j of the last stage (head applied after it)", f"{split} accuracy (%)")
    for ax in g.axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    g.set_titles("{col_name}")
    g.legend.set_title("epoch")
    g.figure.suptitle("Intermediate heads during training (mean, band: range over seeds)", y=1.03)
    return save_figure(g.figure, stem)


def plot_borderline(borderline: pd.DataFrame, stem, split: str = "test") -> list[str]:
    """Loss, accuracy and entropy over the last blocks, for borderline / correct / all examples."""
    plt = pyplot()
    f = _ok(borderline)
    f = f[f["split"] == split].copy()
    f.loc[f["metric"] == "accuracy", "value"] *= 100
    if f.empty:
        return save_figure(empty_figure("Borderline examples"), stem)
    labels = {"loss": "cross-entropy (nats)", "accuracy": "accuracy (%)", "entropy": "prediction entropy (nats)"}
    models = sorted(f["model"].unique())
    fig, axes = plt.subplots(3, len(models), figsize=(4.2 * len(models), 8.5), squeeze=False)
    for j, model in enumerate(models):
        m = f[f["model"] == model]
        n = m[m["group"] == "borderline"].groupby("seed")["n_examples"].first().sum()
        for i, metric in enumerate(("loss", "accuracy", "entropy")):
            ax = axes[i, j]
            sns.lineplot(data=m[m["metric"] == metric], x="offset", y="value", hue="group",
                         palette=GROUP_COLORS, marker="o", errorbar=BAND, ax=ax, legend=(i == 0))
            ax.set_ylabel(labels[metric])
            ax.set_xlabel("head after block (0 = last block, -1 = one before ...)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if i == 0:
                ax.set_title(f"{model}\n({int(n)} borderline {split} examples over all seeds)")
    fig.suptitle("Borderline examples over the last blocks (mean, band: range over seeds)", y=1.0)
    fig.tight_layout()
    return save_figure(fig, stem)


def plot_unroll(unroll: pd.DataFrame, stem) -> list[str]:
    """Unrolling the last block: train loss, borderline test accuracy and ‖h‖ per extra step."""
    plt = pyplot()
    f = _ok(unroll)
    if f.empty:
        return save_figure(empty_figure("Unrolling the last block"), stem)
    panels = [("train", "all", "loss", "train loss (nats, log scale)", True),
              ("test", "borderline", "accuracy", "accuracy of borderline test examples (%)", False),
              ("train", "all", "h_norm", "‖h‖ entering the head (log scale)", True)]
    models = sorted(f["model"].unique())
    colors = _scale_colors(f["scale"].unique())
    fig, axes = plt.subplots(len(models), 3, figsize=(13, 3.4 * len(models)), squeeze=False)
    for i, model in enumerate(models):
        m = f[f["model"] == model]
        for j, (split, group, metric, ylabel, log) in enumerate(panels):
            ax = axes[i, j]
            d = m[(m["split"] == split) & (m["group"] == group) & (m["metric"] == metric)].copy()
            if metric == "accuracy":
                d["value"] *= 100
            if d.empty:
                empty_axes(ax)
                continue
            sns.lineplot(data=d, x="step", y="value", hue="scale", palette=colors, errorbar=BAND, ax=ax,
                         legend=(j == 0))
            if log and (d["value"] > 0).all():
                ax.set_yscale("log")
            ax.set_xlabel("extra applications of the last block")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(ylabel)
            ax.set_title(model if j == 0 else "")
        if axes[i, 0].get_legend():
            axes[i, 0].get_legend().set_title("residual scale")
    fig.suptitle("Unrolling the last block: h <- h + scale * F(h) (mean, band: range over seeds)", y=1.0)
    fig.tight_layout()
    return save_figure(fig, stem)


def plot_sharing_init(init: pd.DataFrame, stem) -> list[str]:
    """Activation and gradient norms per block at initialisation, by sharing variant."""
    plt = pyplot()
    f = _ok(init)
    f = f[f["block"] >= 0] if "block" in f else f
    if f.empty:
        return save_figure(empty_figure("Sharing diagnostics at initialisation"), stem)
    experiments = sorted(f["experiment"].unique())
    rows = [("out_norm", r"$\|h_{i+1}\|$ after block i (log scale)"),
            ("grad_in", "‖∂L/∂h_i‖ before block i (log scale)")]
    fig, axes = plt.subplots(2, len(experiments), figsize=(4.6 * len(experiments), 7), squeeze=False)
    for j, exp in enumerate(experiments):
        e = f[f["experiment"] == exp]
        for i, (metric, ylabel) in enumerate(rows):
            ax = axes[i, j]
            sns.lineplot(data=e[e["metric"] == metric], x="block", y="value", hue="variant",
                         palette=VARIANT_COLORS, marker="o", errorbar=BAND, ax=ax, legend=(i == 0))
            if (e[e["metric"] == metric]["value"] > 0).all():
                ax.set_yscale("log")
            ax.set_xlabel("residual block i (forward order)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(ylabel)
            if i == 0:
                ax.set_title(exp)
    fig.suptitle("At initialisation, BN with batch statistics (mean, band: range over seeds)", y=1.0)
    fig.tight_layout()
    return save_figure(fig, stem)


def plot_sharing_growth(growth: pd.DataFrame, stem) -> list[str]:
    """Claim A4a's data: growth of the activation norm (and gradient ratio) over the top
    shared blocks of each stage at initialisation, per variant, one point per seed."""
    plt = pyplot()
    f = growth[growth["value"].notna()] if len(growth) else growth
    if f.empty:
        return save_figure(empty_figure("Sharing diagnostics at initialisation"), stem)
    metrics = [("growth", "‖h‖ after / before the shared blocks"),
               ("grad_ratio", "gradient ratio r over the shared blocks")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), squeeze=False)
    for ax, (metric, ylabel) in zip(axes[0], metrics):
        part = f[f["metric"] == metric]
        sns.stripplot(data=part, x="stage", y="value", hue="variant", palette=VARIANT_COLORS,
                      dodge=True, ax=ax)
        ax.set_xlabel("stage")
        ax.set_ylabel(ylabel)
    fig.suptitle(f"At initialisation, BN with batch statistics ({f['seed'].nunique()} seeds, one point each)",
                 y=1.0)
    fig.tight_layout()
    return save_figure(fig, stem)


def plot_sharing_curves(curves: pd.DataFrame, stem) -> list[str]:
    """Train and test error over epochs, by sharing variant."""
    pyplot()  # Agg backend and the shared theme before seaborn draws
    f = _ok(curves)
    f = f[f["metric"] == "error"] if len(f) else f
    if f.empty:
        return save_figure(empty_figure("Training curves"), stem)
    g = sns.relplot(data=f, x="epoch", y="value", hue="variant", palette=VARIANT_COLORS, style="split",
                    style_order=["test", "train"], col="experiment", kind="line", marker="o", errorbar=BAND,
                    height=3.4, aspect=1.2)
    for ax in g.axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if (f["value"] > 0).all():
            ax.set_yscale("log")
    g.set_axis_labels("epoch", "error (%, log scale)")
    g.set_titles("{col_name}")
    g.figure.suptitle("Train / test error: unshared vs naive sharing vs unshared BN (mean, band: range over seeds)",
                      y=1.03)
    return save_figure(g.figure, stem)


def make_figures(tables: dict[str, pd.DataFrame], out_dir) -> list[str]:
    """Every paper-A figure into out_dir/<name>.png|pdf, one per name in plan.FIGURES."""
    draw = {
        "cosine": lambda stem: plot_block_metric(tables["blocks"], "cosine", stem),
        "norm_ratio": lambda stem: plot_block_metric(tables["blocks"], "norm_ratio", stem),
        "drop": lambda stem: plot_drop(tables["drop"], stem),
        "heads": lambda stem: plot_heads(tables["heads"], stem),
        "borderline": lambda stem: plot_borderline(tables["borderline"], stem),
        "unroll": lambda stem: plot_unroll(tables["unroll"], stem),
        # A4a's init-only diagnostics when the configuration has them (no trained sharing
        # variants at the default scale), else the per-block norms of the trained variants
        "sharing_init": lambda stem: (plot_sharing_growth(tables["sharing_init"], stem)
                                      if "sharing_init" in tables
                                      else plot_sharing_init(tables["init"], stem)),
        "sharing_curves": lambda stem: plot_sharing_curves(tables["curves"], stem),
    }
    return [path for name in FIGURES for path in draw[name](Path(out_dir) / name)]
