"""Paper B's figures: sharpness and accuracy against eta/S, the (eta, S) accuracy heatmap,
interpolation curves, schedule swap, memorization and breaking point. Drawn with
repro.figures.pyplot() (the one theme) and saved through repro.figures.save_figure; a figure
with nothing to draw says why (repro.figures.empty_axes). Runs without a value (diverged,
not at the target loss) are drawn as an x at the top edge, never as a number."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

import seaborn as sns
from matplotlib import cm, colors, ticker
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from ..figures import empty_axes, pyplot, save_figure
from .tables import SCHEDULE_ORDER, memo_wide, runs_wide, schedule_kind, size_key

RATIO_LABEL = "η/S  (learning rate / batch size, per example)"


def batch_palette(sizes) -> dict:
    """One colour per batch size, ordered small -> large (same in every figure)."""
    sizes = sorted({int(s) for s in sizes})
    return dict(zip(sizes, sns.color_palette("viridis", max(len(sizes), 1))))


def _marker_legend(pal: dict, extra: list) -> list:
    handles = [Line2D([], [], color=c, marker="o", ls="none", label=f"S = {s}") for s, c in pal.items()]
    handles += [Line2D([], [], color="grey", marker="o", ls="none", label="grid run (mean ± sd over seeds)"),
                Line2D([], [], color="grey", marker="D", mec="black", ls="none", label="same η/S as the β runs")]
    return handles + extra


def _top_markers(ax, frame: pd.DataFrame, handles: list) -> None:
    """Runs without a value: an x at the top edge at their eta/S (never a zero)."""
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    groups = (("diverged (no value)", frame[frame.status != "completed"], "crimson"),
              ("did not reach target loss", frame[(frame.status == "completed") & ~frame.matched], "dimgrey"))
    for label, sub, colour in groups:
        if len(sub):
            ax.plot(sub.lr_over_batch, [0.97] * len(sub), "x", color=colour, ms=9, mew=2, transform=trans,
                    clip_on=False)
            if not any(h.get_label() == label for h in handles):
                handles.append(Line2D([], [], color=colour, marker="x", ls="none", mew=2, label=label))


def _plain_log_ticks(axis, values) -> None:
    """Log axis with plain numbers (5, 10, 20) instead of 5x10^0; minor labels on short ranges."""
    fmt = ticker.FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(fmt)
    values = np.asarray(values, float)
    values = values[np.isfinite(values) & (values > 0)]
    short = len(values) and values.max() / values.min() < 20
    axis.set_minor_formatter(fmt if short else ticker.NullFormatter())


def _ratio_ticks(ax, ratios) -> None:
    """Ticks at the eta/S values that were run (when there are few), labelled 7.8e-04."""
    values = sorted({float(r) for r in ratios if np.isfinite(r) and r > 0})
    if 0 < len(values) <= 8:
        ax.xaxis.set_major_locator(ticker.FixedLocator(values))
        ax.xaxis.set_major_formatter(ticker.FixedFormatter([f"{v:.2g}" for v in values]))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.tick_params(axis="x", labelrotation=30)


def _target_text(wide: pd.DataFrame) -> str:
    targets = sorted({float(t) for t in wide.target_loss.dropna()})
    if not targets:
        return "no target train loss set: sharpness after a fixed budget (not matched)"
    return ("each run measured at the first check (every epoch end, or train.stop_checks_per_epoch times per "
            "epoch) whose full train loss ≤ " + ", ".join(f"{t:g}" for t in targets))


def _groups(wide: pd.DataFrame) -> list:
    return list(dict.fromkeys(wide.group)) if len(wide) and "group" in wide else [None]


def plot_vs_ratio(wide: pd.DataFrame, panels, stem, title: str) -> None:
    """panels: [(column, y label, log y, scale)]; one row per group of comparable runs; one
    point per (eta, S) with the seeds as error bars (mean ± sd) and as faint dots."""
    plt = pyplot()
    groups = _groups(wide)
    fig, axes = plt.subplots(len(groups), len(panels), figsize=(5.2 * len(panels), 4.2 * len(groups)),
                             squeeze=False)
    pal = batch_palette(wide.batch_size) if len(wide) else {}
    handles = _marker_legend(pal, [])
    for row, group in zip(axes, groups):
        gw = wide if group is None else wide[wide.group == group]
        matched = gw[gw.matched] if len(gw) else gw
        for ax, (col, ylabel, logy, scale) in zip(row, panels):
            d = matched[np.isfinite(matched[col].astype(float))].copy() if len(matched) else matched
            if len(d):
                d["_y"] = d[col] * scale
                for eq, marker in ((False, "o"), (True, "D")):
                    sub = d[d.equal_ratio == eq]
                    if len(sub):
                        ax.scatter(sub.lr_over_batch, sub._y, c=[pal[int(v)] for v in sub.batch_size],
                                   marker=marker, s=14, alpha=0.35, linewidths=0)
                agg = d.groupby(["lr", "batch_size", "lr_over_batch", "equal_ratio"])["_y"].agg(
                    ["mean", "std", "count"]).reset_index()
                for _, r in agg.iterrows():
                    colour = pal[int(r.batch_size)]
                    ax.errorbar(r.lr_over_batch, r["mean"], yerr=r["std"] if r["count"] > 1 else None,
                                fmt="D" if r.equal_ratio else "o", color=colour, ms=7, capsize=3,
                                mec="black" if r.equal_ratio else colour, elinewidth=1.2)
            else:
                ax.text(0.5, 0.5, "no matched runs", ha="center", va="center", transform=ax.transAxes)
            if len(gw):
                _top_markers(ax, gw, handles)
            ax.set_xscale("log")
            _ratio_ticks(ax, gw.lr_over_batch if len(gw) else [])
            if logy and len(d):
                ax.set_yscale("log")
                _plain_log_ticks(ax.yaxis, d["_y"])
            ax.set_xlabel(RATIO_LABEL)
            ax.set_ylabel(ylabel)
            if group is not None and len(groups) > 1:
                ax.set_title(group, fontsize=9, loc="left")
    fig.suptitle(f"{title}\n{_target_text(wide) if len(wide) else ''}", fontsize=11)
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    save_figure(fig, stem)


def _heatmap(ax, wide: pd.DataFrame, sns) -> None:
    lrs, sizes = sorted(wide.lr.unique()), sorted(wide.batch_size.unique())
    mean = np.full((len(sizes), len(lrs)), np.nan)
    labels = np.full(mean.shape, "", dtype=object)
    for (lr, s), g in wide.groupby(["lr", "batch_size"]):
        i, j = sizes.index(s), lrs.index(lr)
        acc = g.test_acc.dropna() * 100
        n_div = int((g.status != "completed").sum())
        n_unm = int(((g.status == "completed") & ~g.matched).sum())
        if len(acc):
            mean[i, j] = acc.mean()
            labels[i, j] = f"{acc.mean():.1f}" + (f"\n±{acc.std(ddof=1):.1f}" if len(acc) > 1 else "")
        if n_div:
            labels[i, j] += ("\n" if labels[i, j] else "") + ("diverged" if not len(acc) else f"({n_div} div.)")
        if n_unm:
            labels[i, j] += f"\n({n_unm} not at target)"
    frame = pd.DataFrame(mean, index=sizes, columns=[f"{v:g}" for v in lrs])
    limits = {"vmin": 0, "vmax": 100} if np.isnan(mean).all() else {}
    sns.heatmap(frame, annot=False, cmap="viridis", ax=ax, cbar_kws={"label": "test accuracy (%)"},
                mask=np.isnan(mean), linewidths=0.5, linecolor="white", **limits)
    ax.set_facecolor("#dddddd")
    for i in range(len(sizes)):
        for j in range(len(lrs)):
            if labels[i, j]:
                if np.isnan(mean[i, j]):
                    colour = "crimson"
                else:
                    colour = "white" if mean[i, j] < np.nanmean(mean) else "black"
                ax.text(j + 0.5, i + 0.5, labels[i, j], ha="center", va="center", fontsize=8, color=colour)
    ax.invert_yaxis()


def plot_accuracy_heatmap(wide: pd.DataFrame, stem) -> None:
    """Mean test accuracy over seeds per (eta, S), one panel per group; diverged cells say so."""
    plt = pyplot()
    groups = _groups(wide)
    n_lr = max([wide[wide.group == g].lr.nunique() for g in groups if g is not None] or [3])
    n_bs = max([wide[wide.group == g].batch_size.nunique() for g in groups if g is not None] or [3])
    fig, axes = plt.subplots(1, len(groups), figsize=((1.3 * max(n_lr, 3) + 2) * len(groups), 0.8 * max(n_bs, 3) + 1.5),
                             squeeze=False)
    for ax, group in zip(axes[0], groups):
        gw = wide if group is None else wide[wide.group == group]
        if len(gw):
            _heatmap(ax, gw, sns)
        ax.set_xlabel("learning rate η")
        ax.set_ylabel("batch size S (examples)")
        if group is not None and len(groups) > 1:
            ax.set_title(group, fontsize=9, loc="left")
    fig.suptitle("Test accuracy (%) per (η, S), mean ± sd over seeds\n" + (_target_text(wide) if len(wide) else ""),
                 fontsize=10)
    fig.tight_layout()
    save_figure(fig, stem)


def plot_ratio_figures(runs_csv, out: dict) -> None:
    """Sharpness vs eta/S, accuracy vs eta/S and the (eta, S) heatmap from runs.csv; `out`:
    the rule's outputs, each figure saved (PNG and PDF) at the stem of its ``*_png`` entry."""
    wide = runs_wide(pd.read_csv(runs_csv))
    for col in ("lambda_max", "hessian_trace", "test_acc"):
        if col not in wide:
            wide[col] = np.nan
    plot_vs_ratio(wide, [("lambda_max", "λ_max(H)  (top Hessian eigenvalue)", True, 1.0),
                         ("hessian_trace", "Tr(H)  (Hutchinson)", True, 1.0)],
                  out["sharpness_png"], "Sharpness of the minimum vs η/S")
    plot_vs_ratio(wide, [("test_acc", "test accuracy (%)", False, 100.0)],
                  out["accuracy_png"], "Test accuracy vs η/S")
    plot_accuracy_heatmap(wide, out["heatmap_png"])


def plot_interpolation(table: pd.DataFrame, stem) -> None:
    """Per pair: loss (log) and accuracy along alpha, train solid, test dashed."""
    plt = pyplot()
    pairs = list(dict.fromkeys(table.pair)) if len(table) else []
    fig, axes = plt.subplots(max(len(pairs), 1), 2, figsize=(11, 3.6 * max(len(pairs), 1)), squeeze=False)
    colours = dict(zip(("train", "test"), sns.color_palette("colorblind", 2)))
    for row, pair in zip(axes, pairs):
        g = table[table.pair == pair]
        first = g.iloc[0]
        for ax, metric, ylabel in ((row[0], "loss", "cross-entropy loss (nats, log scale)"),
                                   (row[1], "accuracy", "accuracy (%)")):
            for split, ls in (("train", "-"), ("test", "--")):
                s = g[(g.split == split) & (g.metric == metric)].sort_values("alpha")
                y = s.value * (100 if metric == "accuracy" else 1)
                ax.plot(s.alpha, y, ls, color=colours[split], marker=".", label=split)
            for a in (0, 1):
                ax.axvline(a, color="grey", lw=0.8, ls=":")
            if metric == "loss" and g[g.metric == "loss"].value.gt(0).any():
                ax.set_yscale("log")
            ax.set_xlabel("α  (θ = (1−α)·θ_a + α·θ_b)")
            ax.set_ylabel(ylabel)
            if g.value.isna().all():
                ax.text(0.5, 0.5, "no values: " + "; ".join(sorted(set(g.note.dropna())))[:110], ha="center",
                        va="center", transform=ax.transAxes, fontsize=8, color="crimson", wrap=True)
                ax.set_yticks([])
        row[0].set_title(f"{pair}: a = {first.a_run} (η/S {first.a_lr_over_batch:.2g}) at α=0, "
                         f"b = {first.b_run} (η/S {first.b_lr_over_batch:.2g}) at α=1", fontsize=9, loc="left")
        row[1].legend(title="split", loc="lower center")
    if not pairs:
        empty_axes(axes[0][0], "no interpolation pairs configured")
        empty_axes(axes[0][1], "")
    fig.tight_layout()
    save_figure(fig, stem)


def schedule_palette(labels) -> dict:
    order = {k: i for i, k in enumerate(SCHEDULE_ORDER)}
    labels = sorted(set(labels), key=lambda l: (order.get(schedule_kind(l), 9), l))
    return dict(zip(labels, sns.color_palette("colorblind", max(len(labels), 1))))


def plot_schedules(curves: pd.DataFrame, stem) -> None:
    """Test accuracy, train loss and eta/S per epoch for each schedule; seeds as sd bands."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    if len(curves):
        pal = schedule_palette(curves.schedule)
        acc = curves[(curves.metric == "test_acc") & (curves.epoch >= 1)].assign(value=lambda d: d.value * 100)
        loss = curves[(curves.metric == "train_loss")]
        ratio = curves[(curves.metric == "train_loss") & (curves.epoch >= 1)]
        sns.lineplot(data=acc, x="epoch", y="value", hue="schedule", palette=pal, errorbar="sd", ax=axes[0])
        sns.lineplot(data=loss, x="epoch", y="value", hue="schedule", palette=pal, errorbar="sd", ax=axes[1],
                     legend=False)
        # eta/S of epoch e applies on (e-1, e]; identical curves (a cycle and its mirror) are drawn
        # wide-to-thin so both stay visible
        for i, (label, g) in enumerate(ratio.groupby("schedule", sort=False)):
            g = g.groupby("epoch", as_index=False).lr_over_batch.mean()
            axes[2].plot(np.r_[g.epoch.iloc[0] - 1, g.epoch], np.r_[g.lr_over_batch.iloc[0], g.lr_over_batch],
                         drawstyle="steps-pre", color=pal[label], lw=max(4.5 - 1.2 * i, 1.0), alpha=0.85)
        axes[1].set_yscale("log")
        axes[2].set_yscale("log")
        _plain_log_ticks(axes[2].yaxis, ratio.lr_over_batch)
        sns.move_legend(axes[0], "lower right", title="schedule (band: ± sd over seeds)", fontsize=8)
    else:
        empty_axes(axes[0], "no schedule runs")
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].set_ylabel("full train loss (cross-entropy, log)")
    axes[2].set_ylabel("η/S used in the epoch (log)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    fig.suptitle("Exchanging learning-rate and batch-size schedules", fontsize=11)
    fig.tight_layout()
    save_figure(fig, stem)


def plot_memorization(table: pd.DataFrame, curves: pd.DataFrame, stem) -> None:
    """Per (label noise, momentum): clean test accuracy against accuracy on the noisy training
    labels along training (one line per run, colour = eta/S), the equal-memorization target as
    a dotted line; below, test accuracy at that target against eta/S. Diverged runs: an x at
    the top edge of the lower panel (no value)."""
    plt = pyplot()

    wide = memo_wide(table) if len(table) else pd.DataFrame()
    cells = list(dict.fromkeys(zip(wide.label_noise, wide.momentum))) if len(wide) else []
    fig, axes = plt.subplots(2, max(len(cells), 1), figsize=(5 * max(len(cells), 1) + 1, 8.4), squeeze=False,
                             layout="constrained")
    if not cells:
        empty_axes(axes[0][0], "no memorization runs at this scale\n(role: memorization: configs/paper.yaml)")
        empty_axes(axes[1][0], "")
    else:
        ratios = wide.lr_over_batch.astype(float)
        norm = colors.LogNorm(vmin=ratios.min(), vmax=max(ratios.max(), ratios.min() * 1.0001))
        cmap = plt.get_cmap("viridis")
        for col, (noise, mom) in enumerate(cells):
            top, bottom = axes[0][col], axes[1][col]
            cw = wide[(wide.label_noise == noise) & (wide.momentum == mom)]
            cc = curves[(curves.label_noise == noise) & (curves.momentum == mom)]
            for (_, run), g in cc.groupby(["experiment", "run"], sort=False):
                g = g.sort_values("epoch")
                ls = "-" if g.status.iloc[0] == "completed" else ":"
                top.plot(100 * g.train_acc, 100 * g.test_acc, ls, color=cmap(norm(g.lr_over_batch.iloc[0])), lw=1.2)
            target = cw.target_train_acc.iloc[0]
            top.axvline(100 * target, color="grey", ls=":", lw=1)
            top.set_xlabel("accuracy on the noisy training labels (%)")
            top.set_ylabel("test accuracy, clean labels (%)")
            top.set_title(f"{100 * noise:g}% random labels, momentum {mom:g}", fontsize=10, loc="left")
            ok = cw[cw.test_acc_at_level.notna()]
            if len(ok):
                bottom.scatter(ok.lr_over_batch, 100 * ok.test_acc_at_level, c=[cmap(norm(v)) for v in ok.lr_over_batch],
                               s=30, edgecolors="black", linewidths=0.4)
            else:
                bottom.text(0.5, 0.5, "no run reached the target", ha="center", va="center",
                            transform=bottom.transAxes)
            trans = blended_transform_factory(bottom.transData, bottom.transAxes)
            div = cw[cw.status != "completed"]
            never = cw[(cw.status == "completed") & cw.test_acc_at_level.isna()]
            for sub, colour, label in ((div, "crimson", "diverged (no value)"),
                                       (never, "dimgrey", "never reached the target")):
                if len(sub):
                    bottom.plot(sub.lr_over_batch, [0.97] * len(sub), "x", color=colour, ms=9, mew=2, transform=trans,
                                clip_on=False, label=label)
            if len(div) or len(never):
                bottom.legend(loc="lower right", fontsize=8)
            bottom.set_xscale("log")
            _ratio_ticks(bottom, cw.lr_over_batch)
            bottom.set_xlabel(RATIO_LABEL)
            bottom.set_ylabel(f"test accuracy at {100 * target:.1f}% noisy-train acc. (%)")
        fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes.ravel().tolist(), label="η/S (line and dot colour)",
                     shrink=0.6)
    fig.suptitle("Memorization with random labels: generalization at equal memorization\n"
                 "(equal memorization = first epoch at the dotted noisy-train accuracy)", fontsize=11)
    save_figure(fig, stem)


def plot_breaking(runs: pd.DataFrame, summary: pd.DataFrame, tolerance: float, stem) -> None:
    """Final test accuracy against beta (eta and S scaled together), one line per train size,
    seeds as dots; the tolerance band below each size's reference and its breaking beta as a
    vertical line; diverged runs as an x at the top edge."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    if summary.empty:
        empty_axes(ax, "no breaking-point runs at this scale\n(role: breaking: configs/paper.yaml)")
    else:
        exps = list(summary.drop_duplicates("experiment").assign(size_key=lambda d: d.train_size.map(size_key))
                    .sort_values("size_key").experiment)
        pal = dict(zip(exps, sns.color_palette("colorblind", len(exps))))
        trans = blended_transform_factory(ax.transData, ax.transAxes)
        for exp in exps:
            s = summary[summary.experiment == exp].sort_values("beta")
            r = runs[runs.experiment == exp]
            size = s.train_size.iloc[0]
            label = f"train size {'full' if size_key(size) == math.inf else int(size)}"
            colour = pal[exp]
            ax.plot(s.beta, 100 * s.mean_test_acc, "-o", color=colour, label=label)
            ok = r[r.status == "completed"]
            ax.scatter(ok.beta, 100 * ok.test_acc, color=colour, s=12, alpha=0.4)
            ref = s.reference_acc.iloc[0]
            if not math.isnan(ref):
                ax.axhspan(100 * (ref - tolerance), 100 * ref, color=colour, alpha=0.08)
            b = s.breaking_beta.iloc[0]
            if not math.isnan(b):
                ax.axvline(b, color=colour, ls="--" if not s.censored.iloc[0] else ":", lw=1)
            div = r[r.status != "completed"]
            if len(div):
                ax.plot(div.beta, [0.97] * len(div), "x", color="crimson", ms=9, mew=2, transform=trans,
                        clip_on=False)
        ax.set_xscale("log", base=2)
        _plain_log_ticks(ax.xaxis, summary.beta)
        ax.legend(title=f"band: {100 * tolerance:g}-point tolerance; dashed: breaking β", fontsize=8)
    ax.set_xlabel("β  (η = η₀β, S = S₀β: equal η/S)")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title("Breaking point of the η/S scaling by train-set size (x at top: diverged)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, stem)
