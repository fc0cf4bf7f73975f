"""Paper C's figures, drawn with the shared theme and saved through
:func:`repro.figures.save_figure` (PNG + PDF); a figure with nothing to draw says so."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import numpy as np
import pandas as pd

from ..figures import empty_axes, pyplot, save_figure
from . import theory
from ..stats import loglog_slope
from .claims import short_name
from .plan import real_figure_stem
from .tables import METRICS, select, summarize

HE_TITLE = "He = N(0, 2/fan-out), the paper's convention"
_LABEL = {"forward_ratio": r"forward  $\|h_l\| / \|x\|$",
          "backward_ratio": r"backward  $\|\partial\ell/\partial W_l\|_F / (\|x\|\,\|\delta\|)$"}
_INIT_LABEL = {"he": "He N(0,2/fan-out)", "he_fanin": "He N(0,2/fan-in)",
               "glorot": "Glorot N(0,1/fan-out)", "glorot_uniform": "Glorot uniform"}


@functools.lru_cache(maxsize=1)
def _colours() -> tuple[dict, dict]:
    """One colour per initialisation and one per metric, the same in every figure."""
    import seaborn as sns

    return (dict(zip(theory.INITS, sns.color_palette("deep", len(theory.INITS)))),
            dict(zip(METRICS, sns.color_palette("dark", 6)[2:4])))


def _init_colour(init: str):
    return _colours()[0][init]


def _metric_colour(metric: str):
    return _colours()[1][metric]


@contextlib.contextmanager
def _single_axes(data: pd.DataFrame):
    """One 7.5x5 axes for a sweep figure; says "no data" when `data` is empty."""
    fig, ax = pyplot().subplots(figsize=(7.5, 5))
    if data.empty:
        empty_axes(ax)
    yield fig, ax


def _delta(frame: pd.DataFrame, delta: float | None) -> float:
    if delta is not None:
        return float(delta)
    return float(frame["delta"].iloc[0]) if "delta" in frame and len(frame) else 0.05


def _seed_mean(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Average numeric columns over seeds (and data seeds) for plotting; keeps order."""
    if frame.empty:
        return frame
    num = [c for c in frame.columns if c not in keys and pd.api.types.is_numeric_dtype(frame[c])
           and c not in ("seed", "data_seed")]
    return frame.groupby(keys, as_index=False, sort=False)[num].mean()


def _seed_points(ax, raw: pd.DataFrame, metric: str, xcol: str, colour) -> None:
    """With several seeds, each network's eps as a small dot beside the seed mean."""
    r = raw[raw["metric"] == metric]
    if r["seed"].nunique() > 1:
        ax.plot(r[xcol], r["eps_measured"], ".", color=colour, alpha=0.45, ms=5,
                label=f"{short_name(metric)}: one network per seed")


def plot_per_layer(per_layer: pd.DataFrame, out_stem, sweep: str = "paper",
                   inputs: str = "gaussian") -> list[str]:
    """Per-layer mean ± std of both ratios, one line per init (He vs Glorot ...), log y.

    With several seeds the per-seed statistics are averaged.
    """
    d = _seed_mean(select(per_layer, sweep=sweep, inputs=inputs),
                   ["init", "metric", "layer", "width", "depth", "n_samples"])
    fig, axes = pyplot().subplots(1, 2, figsize=(13, 4.8), sharey=True)
    inits = list(dict.fromkeys(d["init"])) if len(d) else []
    for ax, metric in zip(axes, METRICS):
        dm = d[d["metric"] == metric]
        if dm.empty:
            empty_axes(ax)
            continue
        for init, g in dm.groupby("init", sort=False):
            g = g.sort_values("layer")
            ax.errorbar(g["layer"], g["mean"], yerr=g["std"], marker="o", capsize=3,
                        color=_init_colour(init), label=_INIT_LABEL.get(init, init))
        if "glorot" in inits:
            L = int(dm["layer"].max())
            lay = np.arange(1, L + 1)
            if metric == "forward_ratio":
                ax.plot(lay, 2.0 ** (-lay / 2), ls="--", color="grey",
                        label=r"Glorot theory $2^{-l/2}$")
            else:
                ax.plot(lay, np.full(L, 2.0 ** (-(L - 1) / 2)), ls="--", color="grey",
                        label=r"Glorot theory $2^{-(L-1)/2}$")
            ax.legend(fontsize="small")
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("layer $l$")
        ax.set_title(_LABEL[metric], fontsize="medium")
    axes[0].set_ylabel("ratio (mean ± std over samples)")
    if len(d):
        axes[0].legend(fontsize="small")
        r = d.iloc[0]
        fig.suptitle(f"Norm ratios at init, {inputs} inputs, N={int(r.n_samples)}, "
                     f"m={int(r.width)}, L={int(r.depth)}  [{HE_TITLE}]", fontsize="medium")
    return save_figure(fig, out_stem)


def _draw_measured_eps(ax, s: pd.DataFrame, raw: pd.DataFrame, xcol: str) -> None:
    """Measured eps per metric along `xcol`: mean ± std, the seeds, and the max."""
    for metric in METRICS:
        col = _metric_colour(metric)
        g = s[s["metric"] == metric]
        ax.errorbar(g[xcol], g["eps_measured"], yerr=g["eps_std"], marker="o",
                    capsize=3, color=col, label=f"{short_name(metric)}: mean |1-ratio| ± std")
        _seed_points(ax, raw, metric, xcol, col)
        ax.plot(g[xcol], g["eps_max"], marker="^", ls=":", color=col,
                label=f"{short_name(metric)}: max |1-ratio|")


def _log_log_axes(ax, xvalues, legend_size: str = "x-small") -> None:
    """Log-log axes with the swept values as the x tick labels, and the legend."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = sorted(set(int(v) for v in xvalues))
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=legend_size)


def _plot_eps_vs(summary: pd.DataFrame, out_stem, sweep: str, xcol: str, xlabel: str,
                 delta: float | None) -> list[str]:
    """Measured eps vs the swept quantity `xcol` beside the theoretical eps, log-log."""
    delta = _delta(summary, delta)
    raw = select(summary, sweep=sweep, init="he", inputs="gaussian")
    s = _seed_mean(raw, ["metric", "width", "depth", "n_samples"]).sort_values(xcol)
    with _single_axes(s) as (fig, ax):
        if not s.empty:
            _draw_measured_eps(ax, s, raw, xcol)
            L, N = int(s["depth"].iloc[0]), int(s["n_samples"].iloc[0])
            if xcol == "width":  # eps(m) is smooth in m: draw it as a curve
                m = np.geomspace(s["width"].min(), s["width"].max(), 200)
                ax.plot(m, theory.theory_epsilon(m, L, N, delta), color="black",
                        label=rf"theory $\epsilon(m)$, L={L}, N={N}, $\delta$={delta}")
                ax.plot(m, theory.theory_epsilon_rate(m, L, N, delta), color="black", ls="--",
                        label=r"$m^{-1/2}$ envelope $\frac{1}{2}\sqrt{5L/m}\sqrt{2\log(2NL/\delta)}$ (no verdict)")
                title = "Measured vs theoretical $\\epsilon$"
            else:
                g = s[s["metric"] == METRICS[0]]
                ax.plot(g[xcol], theory.theory_epsilon(g["width"], g["depth"], g["n_samples"], delta),
                        color="black", marker="s", label=rf"theory $\epsilon$ ($\delta$={delta})")
                fixed = f"m={int(s['width'].iloc[0])}, " + (f"N={N}" if xcol == "depth" else f"L={L}")
                title = f"$\\epsilon$ vs {xlabel} ({fixed})"
            _log_log_axes(ax, s[xcol])
            ax.set_title(f"{title}\n[{HE_TITLE}]", fontsize="medium")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(r"$\epsilon$")
        return save_figure(fig, out_stem)


def plot_eps_vs_width(summary: pd.DataFrame, out_stem, delta: float | None = None) -> list[str]:
    """Measured eps (mean ± std, and max) vs width with the theoretical eps(m), log-log."""
    return _plot_eps_vs(summary, out_stem, "width", "width", "width $m$", delta)


def plot_eps_vs_depth(summary: pd.DataFrame, out_stem, delta: float | None = None) -> list[str]:
    return _plot_eps_vs(summary, out_stem, "depth", "depth", "depth $L$", delta)


def plot_eps_vs_samples(summary: pd.DataFrame, out_stem, delta: float | None = None) -> list[str]:
    return _plot_eps_vs(summary, out_stem, "samples", "n_samples", "number of samples $N$", delta)


def plot_spread_vs_width(summary: pd.DataFrame, out_stem) -> list[str]:
    """Std of the ratios vs width on log-log axes, fitted slope annotated, -1/2 reference."""
    s = _seed_mean(select(summary, sweep="width", init="he", inputs="gaussian"),
                   ["metric", "width", "depth", "n_samples"]).sort_values("width")
    with _single_axes(s) as (fig, ax):
        for metric in METRICS:
            col = _metric_colour(metric)
            g = s[s["metric"] == metric]
            if len(g) < 2:
                continue
            slope, se, _, _ = loglog_slope(g["width"], g["spread"])
            fit = np.polyfit(np.log(g["width"]), np.log(g["spread"]), 1)
            m = np.geomspace(g["width"].min(), g["width"].max(), 50)
            ax.plot(g["width"], g["spread"], "o", color=col)
            ax.plot(m, np.exp(np.polyval(fit, np.log(m))), color=col,
                    label=f"{short_name(metric)}: slope {slope:.3f} ± {se:.3f}")
        if len(s):
            g = s[s["metric"] == METRICS[0]]
            m = np.geomspace(g["width"].min(), g["width"].max(), 50)
            ax.plot(m, g["spread"].iloc[0] * (m / g["width"].iloc[0]) ** -0.5, ls="--",
                    color="grey", label="reference slope -1/2")
            _log_log_axes(ax, g["width"], legend_size="small")
            ax.set_xlabel("width $m$")
            ax.set_ylabel("std of ratio over samples (mean over layers)")
        ax.set_title(f"Spread of the norm ratios vs width\n[{HE_TITLE}]", fontsize="medium")
        return save_figure(fig, out_stem)


def plot_fresh(summary: pd.DataFrame, out_stem) -> list[str]:
    """Empirical eps of each He network on its own data set (0) and on fresh ones (1..)."""
    s = select(summary, sweep="fresh", init="he", inputs="gaussian")
    with _single_axes(s) as (fig, ax):
        if not s.empty:
            s = s.sort_values(["seed", "data_seed"]).copy()
            s["data_set"] = s.groupby(["seed", "metric"]).cumcount()
            for metric in METRICS:
                g = s[s["metric"] == metric]
                first = g["seed"].min()
                for seed, gs in g.groupby("seed"):
                    alpha = 1.0 if seed == first else 0.5
                    ax.errorbar(gs["data_set"], gs["eps_measured"], yerr=gs["eps_std"],
                                marker="o", capsize=3, color=_metric_colour(metric), alpha=alpha,
                                label=(f"{short_name(metric)}: mean |1-ratio| ± std"
                                       if seed == first else None))
                    ax.plot(gs["data_set"], gs["eps_max"], marker="^", ls=":",
                            color=_metric_colour(metric), alpha=alpha,
                            label=f"{short_name(metric)}: max |1-ratio|" if seed == first else None)
            r = s.iloc[0]
            ax.axhline(r["eps_theory"], color="black",
                       label=rf"theory $\epsilon(m)$ ($\delta$={r['delta']:g})")
            n_sets = int(s["data_set"].max()) + 1
            ax.set_xticks(range(n_sets), ["own"] + [f"fresh {i}" for i in range(1, n_sets)])
            ax.set_yscale("log")
            ax.legend(fontsize="x-small")
            ax.set_title(f"Same network, fresh samples (m={int(r['width'])}, L={int(r['depth'])}, "
                         f"N={int(r['n_samples'])} per set)\n[{HE_TITLE}]", fontsize="medium")
            ax.set_xlabel("data set (Gaussian inputs)")
            ax.set_ylabel(r"$\epsilon$")
        return save_figure(fig, out_stem)


def make_figures(per_layer: pd.DataFrame, out_dir, delta: float | None = None) -> list[str]:
    """Every paper-C figure for the sweeps present, into out_dir (PNG + PDF each): the stems
    of :data:`repro.heinit.plan.FIGURES`, the real-input one per dataset present.

    delta (for the theory curves) defaults to the tables' own ``delta`` column.
    """
    out = Path(out_dir)
    summary = summarize(per_layer)
    paths = plot_per_layer(per_layer, out / "per_layer_paper", "paper", "gaussian")
    for inputs in sorted(set(select(per_layer, sweep="real")["inputs"])):
        paths += plot_per_layer(per_layer, out / real_figure_stem(inputs), "real", inputs)
    paths += plot_eps_vs_width(summary, out / "eps_vs_width", delta)
    paths += plot_eps_vs_depth(summary, out / "eps_vs_depth", delta)
    paths += plot_eps_vs_samples(summary, out / "eps_vs_samples", delta)
    paths += plot_spread_vs_width(summary, out / "spread_vs_width")
    paths += plot_fresh(summary, out / "fresh")
    return paths
