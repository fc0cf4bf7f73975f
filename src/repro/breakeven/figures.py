"""Paper D's figures (rule breakeven_figures), drawn and saved the shared way (repro.figures).

Trajectories of the curvature metrics per sweep (seed mean, range over seeds, the epoch
reaching the threshold accuracy), the early phase (λ₁ᴴ against λ₁ᴷ, α* and ηλ₁ᴴ), and
batch normalisation's effect on the maxima.
"""

from __future__ import annotations

import math

import pandas as pd
import seaborn as sns

from ..figures import empty_axes, pyplot, save_figure
from .tables import find_sweeps, sweep_runs

LABELS = {
    "lambda1_K": r"$\lambda_1^K$",
    "lambda1_H": r"$\lambda_1^H$",
    "trace_K": r"Tr$(K)$",
    "conditioning_K": r"$\lambda_*^K/\lambda_1^K$",
    "trace_over_lambda1_K": r"Tr$(K)/\lambda_1^K$",
    "train_acc": "train accuracy",
    "g_over_gtop": r"$\|g\|/\|g_5\|$",
    "alpha_star": r"$\alpha^*$",
    "gamma_norm": r"$\|\gamma\|$ (last BN)",
    "lr_lambda1_H": r"$\eta\,\lambda_1^H$",
}


def _palettes(runs: pd.DataFrame) -> dict:
    """One colour per learning rate and per batch size, the same in every figure."""
    lrs = sorted(runs.lr.unique())
    bss = sorted(runs.batch_size.unique())
    return dict(lr={f"η={v:g}": c for v, c in zip(lrs, sns.color_palette("viridis", len(lrs)))},
                batch_size={f"S={v:g}": c for v, c in zip(bss, sns.color_palette("flare", len(bss)))},
                model={m: c for m, c in zip(sorted(runs.model.unique()), sns.color_palette("colorblind"))})


def _hue(kind: str, value) -> str:
    return f"η={value:g}" if kind == "lr" else f"S={value:g}"


def _sweep_panel(ax, traj, runs, sweep, metric, palette, log=True, show_threshold=True) -> None:
    kind = sweep["kind"]
    t = sweep_runs(traj[traj.metric == metric].dropna(subset=["value"]), sweep)
    if t.empty:
        empty_axes(ax, "no measured value")
        return
    t = t.assign(hue=[_hue(kind, v) for v in t[kind]])
    order = [_hue(kind, v) for v in sweep["values"]]
    sns.lineplot(data=t, x="epoch", y="value", hue="hue", hue_order=order, palette=palette[kind], ax=ax,
                 errorbar=("pi", 100), marker="o", markersize=3, linewidth=1.2)
    if show_threshold:
        r = sweep_runs(runs, sweep)
        for v, g in r.groupby(kind):
            e = g.threshold_epoch.mean()
            if not math.isnan(e):
                ax.axvline(e, color=palette[kind][_hue(kind, v)], linestyle=":", linewidth=1)
    if log and (t.value > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.legend(title=None, fontsize=7)


def plot_trajectories(traj: pd.DataFrame, runs: pd.DataFrame, metrics, path, title: str) -> None:
    """Rows: metrics; columns: sweeps. Lines = seed mean, band = range over seeds, dotted
    vertical lines = mean threshold epoch per swept value."""
    plt = pyplot()
    sweeps = find_sweeps(runs)
    pal = _palettes(runs)
    ncol = max(1, len(sweeps))
    fig, axes = plt.subplots(len(metrics), ncol, figsize=(4.2 * ncol, 2.8 * len(metrics)), squeeze=False)
    for j in range(ncol):
        for i, metric in enumerate(metrics):
            ax = axes[i][j]
            if not sweeps:
                empty_axes(ax, "no sweep in the configuration")
                continue
            _sweep_panel(ax, traj, runs, sweeps[j], metric, pal, log=metric not in ("train_acc",))
            if metric == "train_acc":
                ax.axhline(runs.threshold_accuracy.iloc[0], color="grey", linestyle="--", linewidth=0.8)
            if i == 0:
                ax.set_title(f"{sweeps[j]['name']}\n[{sweeps[j]['experiment']}]", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_early_phase(traj: pd.DataFrame, runs: pd.DataFrame, path) -> None:
    """Per learning-rate sweep: lambda1_H against lambda1_K along the trajectory, alpha* and
    lr*lambda1_H against epoch in the early phase (up to twice the latest threshold epoch)."""
    plt = pyplot()
    sweeps = [s for s in find_sweeps(runs) if s["kind"] == "lr"] or find_sweeps(runs)
    pal = _palettes(runs)
    nrow = max(1, len(sweeps))
    fig, axes = plt.subplots(nrow, 3, figsize=(13, 3.3 * nrow), squeeze=False)
    if not sweeps:
        for ax in axes[0]:
            empty_axes(ax, "no sweep in the configuration")
    for i, sw in enumerate(sweeps):
        kind = sw["kind"]
        r = sweep_runs(runs, sw)
        horizon = r.threshold_epoch.max()
        horizon = max(1.0, 2 * horizon) if not math.isnan(horizon) else r.epochs.max()
        t = sweep_runs(traj, sw).dropna(subset=["value"])
        t = t[t.epoch <= horizon].assign(hue=lambda d: [_hue(kind, v) for v in d[kind]])
        order = [_hue(kind, v) for v in sw["values"]]
        wide = t[t.metric.isin(["lambda1_K", "lambda1_H"])].pivot_table(
            index=["run", "hue", "epoch"], columns="metric", values="value").reset_index()
        ax = axes[i][0]
        if {"lambda1_K", "lambda1_H"} <= set(wide.columns) and len(wide):
            for (run, hue), g in wide.sort_values("epoch").groupby(["run", "hue"]):
                ax.plot(g.lambda1_K, g.lambda1_H, "-o", ms=3, color=pal[kind][hue], lw=1, label=hue)
            handles, labels = ax.get_legend_handles_labels()
            uniq = dict(zip(labels, handles))
            ax.legend([uniq[k] for k in order if k in uniq], [k for k in order if k in uniq], fontsize=7)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(LABELS["lambda1_K"] + " (mini-batch gradient covariance)")
            ax.set_ylabel(LABELS["lambda1_H"])
        else:
            empty_axes(ax, "no curvature measured")
        ax.set_title(f"{sw['name']} [{sw['experiment']}]", fontsize=9)
        for ax, metric in ((axes[i][1], "alpha_star"), (axes[i][2], "lr_lambda1_H")):
            m = t[t.metric == metric]
            if m.empty:
                empty_axes(ax, f"no {metric}")
                continue
            sns.lineplot(data=m, x="epoch", y="value", hue="hue", hue_order=order, palette=pal[kind], ax=ax,
                         errorbar=("pi", 100), marker="o", markersize=3)
            ax.axhline(2.0, color="grey", linestyle="--", linewidth=0.8)
            ax.set_yscale("log")
            ax.set_xlabel("epoch (early phase)")
            ax.set_ylabel(LABELS[metric])
            ax.legend(title=None, fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def plot_bn(traj: pd.DataFrame, maxima: pd.DataFrame, runs: pd.DataFrame, path) -> None:
    """BN vs no BN: max lambda1_K and max Tr(K)/lambda1_K against lr per model (learning-rate
    sweeps, valid runs, mean and range over seeds), and ||gamma|| of the last BN layer."""
    plt = pyplot()
    pal = _palettes(runs)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    lr_sweeps = [s for s in find_sweeps(runs) if s["kind"] == "lr"]
    sel = pd.concat([sweep_runs(maxima, s) for s in lr_sweeps]) if lr_sweeps else maxima.iloc[:0]
    sel = sel[sel.valid]
    for ax, metric in ((axes[0], "max_lambda1_K"), (axes[1], "max_trace_over_lambda1")):
        m = sel[sel.metric == metric]
        if m.empty:
            empty_axes(ax, "no valid learning-rate sweep")
            continue
        sns.lineplot(data=m, x="lr", y="value", hue="model", palette=pal["model"], ax=ax, errorbar=("pi", 100),
                     marker="o", err_style="bars")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("learning rate η")
        base = {"max_lambda1_K": "lambda1_K", "max_trace_over_lambda1": "trace_over_lambda1_K"}[metric]
        ax.set_ylabel("max over trajectory of " + LABELS[base])
        ax.legend(title=None, fontsize=7)
    g = traj[(traj.metric == "gamma_norm")].dropna(subset=["value"])
    if g.empty:
        empty_axes(axes[2], "no BN network in the configuration")
    else:
        g = g.assign(hue=[_hue("lr", v) for v in g.lr])
        g = g.assign(hue=[f"{m}, {h}" for m, h in zip(g.model, g.hue)] if g.model.nunique() > 1 else g.hue)
        sns.lineplot(data=g, x="epoch", y="value", hue="hue", ax=axes[2], errorbar=("pi", 100),
                     palette=pal["lr"] if g.model.nunique() == 1 else None)
        axes[2].set_xlabel("epoch")
        axes[2].set_ylabel(LABELS["gamma_norm"])
        axes[2].legend(title=None, fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def make_figures(trajectories_path, maxima_path, runs_path, out: dict) -> None:
    """All figures; out: trajectories/early/bn/extra -> the PNG path (the PDF beside it)."""
    traj = pd.read_csv(trajectories_path)
    maxima, runs = pd.read_csv(maxima_path), pd.read_csv(runs_path)
    plot_trajectories(traj, runs, ["lambda1_K", "lambda1_H", "trace_K", "conditioning_K"], out["trajectories"],
                      title="Curvature along the trajectory (line: seed mean, band: range over seeds, "
                            "dotted: epoch reaching the threshold accuracy)")
    plot_early_phase(traj, runs, out["early"])
    plot_bn(traj, maxima, runs, out["bn"])
    plot_trajectories(traj, runs, ["train_acc", "trace_over_lambda1_K", "g_over_gtop", "alpha_star"], out["extra"],
                      title="Accuracy, Tr(K)/λ₁ᴷ, ‖g‖/‖g₅‖ and α* along the trajectory")
