"""The papers' numbers beside ours (rule paper_comparison -> results/tables/paper_comparison.csv|md).

Why: the claims test the papers' qualitative statements; this table shows every number
the papers report that the pipeline can produce, so a reader sees how close we come.

REFERENCE below is the one hand-entered table of the papers' values; each row cites
../shared/PAPERS.md by section and line. A row also says where our number comes from:
a measurement `source` (built by MEASUREMENTS from the tables the paper rules write) and
two selections of it: `paper`, the paper's own setting (configs/paper.yaml; for paper C
the authors' simulation setting, which config.yaml also runs), and `default`, the
default-scale analogue in config.yaml, a different setting (None when there is none).
A row takes the paper-setting value when that run exists (scale "paper"), else the
analogue (scale "default", its setting spelled out), else says "not run". Nothing is
ever filled in: a missing run stays missing.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import papers
from .io import atomic_write_text

PARAMS_EXPERIMENT = "iterative_resnets_c10"  # configs/paper.yaml: the Table 1 architectures
# name -> path under results/ of every table read here, per paper (the rule's inputs)
INPUTS = {
    "iterative": {"iterative_table1": "tables/iterative/table1.csv",
                  "iterative_blocks": "tables/iterative/blocks.csv",
                  "iterative_unroll": "tables/iterative/unroll.csv"},
    "minima": {"minima_schedules": "tables/minima/schedules.csv"},
    "heinit": {"heinit_per_layer": "tables/heinit/per_layer.csv"},
    "breakeven": {"breakeven_maxima": "tables/breakeven/maxima.csv",
                  "breakeven_runs": "tables/breakeven/runs.csv",
                  "breakeven_trajectories": "tables/breakeven/trajectories.csv"},
}


def input_tables(papers, results="results") -> dict[str, str]:
    """name -> path of every table the comparison reads, for the given papers."""
    return {name: f"{results}/{path}" for paper in papers for name, path in INPUTS[paper].items()}


COLUMNS = ["paper", "experiment", "quantity", "setting", "paper_value", "our_value", "our_sd", "our_n",
           "scale", "our_setting", "note", "source"]


def eps_bound(width: int, n_samples: int = 2000, depth: int = 10, delta: float = 0.05) -> float:
    """The paper's ε(m) = (1 + (4/m)·log(4NL/δ))^L − 1 (PAPERS.md C, l.127-130)."""
    return (1 + 4 / width * math.log(4 * n_samples * depth / delta)) ** depth - 1


# ------------------------------------------------------------------ the papers' numbers

def _table1_rows() -> list[dict]:
    """Paper A, Table 1 (PAPERS.md A, l.57-67): train / test error %, 4 runs; parameters."""
    table = {  # label in configs/paper.yaml -> (name, C10 train, C10 test, C100 train, C100 test, params)
        "resnet32": ("ResNet-32", 1.53, 7.14, 12.62, 30.08, 470e3),
        "resnet38": ("ResNet-38", 1.20, 6.99, 10.04, 29.66, 568e3),
        "resnet110_ubn": ("ResNet-110-UBN (shared)", 0.63, 6.62, 7.75, 29.94, 573e3),
        "resnet146_ubn": ("ResNet-146-UBN (shared)", 0.68, 6.82, 7.21, 29.49, 576e3),
        "resnet182_ubn": ("ResNet-182-UBN (shared)", 0.48, 6.97, 6.42, 29.33, 578e3),
        "resnet56": ("ResNet-56", 0.58, 6.53, 5.19, 28.99, 860e3),
        "resnet110": ("ResNet-110", 0.22, 6.13, 1.26, 27.54, 1737e3),
    }
    # default-scale analogues: the same-depth unshared / UBN pair of config.yaml (MNIST-5k)
    analogue = {"resnet110": "unshared", "resnet110_ubn": "ubn"}
    rows = []
    for label, (name, *values) in table.items():
        for i, (dataset, data_name, exp) in enumerate((("cifar10", "CIFAR-10", "iterative_resnets_c10"),
                                                        ("cifar100", "CIFAR-100", "iterative_resnets_c100"))):
            for metric, value in (("train_error", values[2 * i]), ("test_error", values[2 * i + 1])):
                default = None
                if label in analogue and dataset == "cifar10":
                    default = dict(experiment="iterative_resnet", label=analogue[label], metric=metric)
                rows.append(dict(paper="A", experiment="Table 1", quantity=metric.replace("_", " ") + " (%)",
                                 setting=f"{name}, {data_name}, mean of 4 runs", paper_value=value,
                                 source="iterative_table1", ref="PAPERS.md A, Table 1 (l.57-67)",
                                 paper_sel=dict(experiment=exp, label=label, metric=metric), default_sel=default))
        # a parameter count needs no training: the architecture of configs/paper.yaml is counted
        rows.append(dict(paper="A", experiment="Table 1", quantity="parameters", setting=f"{name}, CIFAR-10",
                         paper_value=values[4], source="architecture_params",
                         ref="PAPERS.md A, Table 1 (l.57-67), ≈",
                         paper_sel=dict(experiment=PARAMS_EXPERIMENT, label=label, metric="params"),
                         default_sel=None))
    return rows


def _reference_rows() -> list[dict]:
    a110 = dict(experiment="iterative_resnets_c10", label="resnet110")
    a_default = dict(experiment="iterative_resnet", label="unshared")
    rows = _table1_rows() + [
        dict(paper="A", experiment="Cosine loss", quantity="cos(F_i, ∂L/∂h_i), last block",
             setting="ResNet-110, CIFAR-10", paper_value=-0.1, source="iterative_blocks",
             ref="PAPERS.md A, metric 1 (l.21-23), ≈",
             paper_sel=dict(a110, metric="cosine_last_block"), default_sel=dict(a_default, metric="cosine_last_block")),
        dict(paper="A", experiment="ℓ2 ratio", quantity="‖F_i‖/‖h_i‖, largest over blocks (a stage's first)",
             setting="single-representation ResNet (10 blocks, 100 filters), CIFAR-10", paper_value=2.0,
             source="iterative_blocks", ref="PAPERS.md A, metric 2 (l.24-25), up to ≈",
             paper_sel=dict(experiment="iterative_single_c10", metric="norm_ratio_max"),
             # the single-representation net is a medium-scale model (docs/CLAIMS.md 2)
             default_sel=None),
    ]
    unroll = "20 extra steps of the last block, output scaled down; model not stated in PAPERS.md (ours: ResNet-110)"
    for metric, quantity, value in (("train_loss_before", "train loss before unrolling", 0.0012),
                                    ("train_loss_after", "train loss after unrolling", 0.001),
                                    ("borderline_n", "borderline test examples (per run)", 51),
                                    ("borderline_acc_before", "borderline test accuracy before (%)", 43),
                                    ("borderline_acc_after", "borderline test accuracy after (%)", 53)):
        rows.append(dict(paper="A", experiment="Unrolling", quantity=quantity, setting=unroll + ", CIFAR-10, 4 runs",
                         paper_value=value, source="iterative_unroll", ref="PAPERS.md A, metric 6 (l.35-37)",
                         paper_sel=dict(a110, metric=metric), default_sel=dict(a_default, metric=metric)))
    for variant, name, value, exp_no, line in (
            ("cbs", "cyclic batch size 128↔640 (stage length not stated)", 89.39, 4, "l.92-94"),
            ("clr", "cyclic learning rate 0.001↔0.005 (stage length not stated)", 89.24, 4, "l.92-94"),
            ("const_small", "constant S=128, η=0.001", 87.25, 4, "l.92-94"),
            ("const_large", "constant S=640, η=0.005", 86.92, 4, "l.92-94"),
            ("cbs", "cyclic batch size, stage length 15 epochs, 8 repeats", 89.9, 7, "l.100-101"),
            ("clr", "cyclic learning rate, stage length 15 epochs, 8 repeats", 90.2, 7, "l.100-101")):
        rows.append(dict(paper="B", experiment=f"Exchanging schedules (exp. {exp_no})", quantity="final test accuracy (%)",
                         setting=f"VGG-11, CIFAR-10, {name}", paper_value=value, source="minima_schedules",
                         ref=f"PAPERS.md B, experiment {exp_no} ({line})",
                         paper_sel=dict(experiment="minima_vgg11_schedules", variant=variant, metric="test_acc"),
                         default_sel=dict(experiment="minima_schedules", variant=variant, metric="test_acc")))
    authors = dict(inputs="gaussian", init="he", width=100, depth=10, n_samples=2000, input_dim=500)
    for metric, name in (("forward_ratio", "‖h_l‖/‖x‖"), ("backward_ratio", "‖∂ℓ/∂W_l‖_F / (‖x‖·‖δ‖)")):
        rows.append(dict(paper="C", experiment="norm_per_layer.py", quantity=f"{name}, mean over layers and samples",
                         setting="He N(0, 2/fan-out), N=2000 x ~ N(0, I_500), 10 layers of width 100",
                         paper_value=1.0, source="heinit_ratio", ref="PAPERS.md C, authors' code (l.122-126), ≈",
                         paper_sel=dict(authors, sweep="paper", metric=metric), default_sel=None))
    for width in (500, 1000, 2000, 4000):
        rows.append(dict(paper="C", experiment="bound_comparison.py",
                         quantity="forward ε: bound ε(m) (paper) vs measured mean deviation abs(1 − ratio) (ours)",
                         setting=f"He, width {width}, N=2000, n=500, L=10, δ=0.05",
                         paper_value=round(eps_bound(width), 4), source="heinit_eps",
                         ref="PAPERS.md C, authors' code (l.127-130): ε(m) formula",
                         paper_sel=dict(authors, sweep="width", width=width, metric="forward_ratio"),
                         default_sel=None))
    cnn = dict(dataset="cifar10", model="SimpleCNN", batch_size=128)
    cnn_default = dict(dataset="mnist5k", model="SimpleCNN", batch_size=128)
    for lr, metric, value, what in ((0.1, "max_lambda1_K", 0.87, "η sweep"), (0.01, "max_lambda1_K", 3.01, "η sweep"),
                                    (0.1, "max_trace_over_lambda1", 14.29, "η sweep"),
                                    (0.01, "max_trace_over_lambda1", 10.69, "η sweep"),
                                    (0.01, "max_lambda1_K", 16, "BN comparison (another run)"),
                                    (0.01, "max_trace_over_lambda1", 11.55, "BN comparison (another run)")):
        rows.append(dict(paper="D", experiment=f"SimpleCNN, {what}", quantity=_D_QUANTITY[metric],
                         setting=f"SimpleCNN, CIFAR-10, η={lr}, S=128", paper_value=value, source="breakeven_maxima",
                         ref="PAPERS.md D, numbers to compare (l.176-180)",
                         paper_sel=dict(cnn, lr=lr, metric=metric), default_sel=dict(cnn_default, lr=lr, metric=metric)))
    for metric, value in (("max_lambda1_K", 10.3), ("max_trace_over_lambda1", 12.14)):
        rows.append(dict(paper="D", experiment="SimpleCNN-BN", quantity=_D_QUANTITY[metric],
                         setting="SimpleCNN-BN, CIFAR-10, η=0.001, S=128", paper_value=value, source="breakeven_maxima",
                         ref="PAPERS.md D, numbers to compare (l.179-180)",
                         paper_sel=dict(cnn, model="SimpleCNN-BN", lr=0.001, metric=metric),
                         default_sel=dict(cnn_default, model="SimpleCNN-BN", lr=0.003, metric=metric)))
    rows.append(dict(paper="D", experiment="Step multiplier α*", quantity="α* at the break-even point",
                     setting="SimpleCNN, CIFAR-10 (ours: at the first snapshot with ≥ 60% train accuracy)",
                     paper_value=2.0, source="breakeven_alpha", ref="PAPERS.md D, tracked quantities (l.158-159), ≈",
                     paper_sel=dict(dataset="cifar10", model="SimpleCNN"),
                     default_sel=dict(dataset="mnist5k", model="SimpleCNN")))
    return rows


_D_QUANTITY = {"max_lambda1_K": "max λ₁ᴷ over the trajectory",
               "max_trace_over_lambda1": "max Tr(K)/λ₁ᴷ over the trajectory"}
REFERENCE = _reference_rows()


# ------------------------------------------------------------------ our numbers

def _seed_stats(values: pd.Series) -> dict:
    v = values.dropna()
    return dict(value=v.mean() if len(v) else np.nan, sd=v.std(ddof=1) if len(v) > 1 else np.nan, n=len(v))


def _iterative_ids(tables: dict) -> pd.DataFrame:
    t1 = tables["iterative_table1"]
    return t1[["experiment", "label", "dataset", "architecture"]].drop_duplicates(["experiment", "label"])


def _setting(row) -> str:
    return f"{row.experiment}/{row.label}: {row.architecture}, {row.dataset}"


def iterative_table1(tables: dict) -> pd.DataFrame:
    t1 = tables["iterative_table1"]
    rows = []
    for r in t1.itertuples():
        base = dict(experiment=r.experiment, label=r.label, setting=_setting(r) + f", {r.seeds} seeds")
        rows += [dict(base, metric="train_error", value=r.train_error_mean, sd=r.train_error_sd, n=r.seeds),
                 dict(base, metric="test_error", value=r.test_error_mean, sd=r.test_error_sd, n=r.seeds),
                 dict(base, metric="params", value=r.params, sd=np.nan, n=1)]
    return pd.DataFrame(rows)


def iterative_blocks(tables: dict) -> pd.DataFrame:
    """Seed statistics of the last block's test cosine and of the largest test norm ratio."""
    b = tables["iterative_blocks"]
    b = b[(b["split"] == "test") & b["value"].notna()]
    rows = []
    for r in _iterative_ids(tables).itertuples():
        g = b[(b["experiment"] == r.experiment) & (b["label"] == r.label)]
        cos = g[g["metric"] == "cosine"]
        if len(cos):
            last = cos[cos["block"] == cos["block"].max()]
            rows.append(dict(experiment=r.experiment, label=r.label, metric="cosine_last_block",
                             setting=_setting(r) + f", block {int(last['block'].iloc[0])}, test split",
                             **_seed_stats(last.groupby("seed")["value"].mean())))
        ratio = g[g["metric"] == "norm_ratio"]
        if len(ratio):
            per_block = ratio.groupby("block")["value"].mean()
            top = per_block.idxmax()
            rows.append(dict(experiment=r.experiment, label=r.label, metric="norm_ratio_max",
                             setting=_setting(r) + f", block {int(top)}, test split",
                             **_seed_stats(ratio[ratio["block"] == top].groupby("seed")["value"].mean())))
    return pd.DataFrame(rows)


def iterative_unroll(tables: dict) -> pd.DataFrame:
    """Train loss and borderline accuracy before/after the extra steps, smallest scale below 1."""
    u = tables["iterative_unroll"]
    u = u[u["value"].notna() & (u["scale"] < 1)]
    rows = []
    for r in _iterative_ids(tables).itertuples():
        g = u[(u["experiment"] == r.experiment) & (u["label"] == r.label)]
        if g.empty:
            continue
        scale = g["scale"].min()
        g = g[g["scale"] == scale]
        first, last = g["step"].min(), g["step"].max()
        setting = _setting(r) + f", {int(last)} extra steps at scale {scale:g}"
        loss = g[(g["split"] == "train") & (g["group"] == "all") & (g["metric"] == "loss")]
        for metric, step in (("train_loss_before", first), ("train_loss_after", last)):
            rows.append(dict(experiment=r.experiment, label=r.label, metric=metric, setting=setting,
                             **_seed_stats(loss[loss["step"] == step].set_index("seed")["value"])))
        acc = g[(g["split"] == "test") & (g["group"] == "borderline") & (g["metric"] == "accuracy")]
        counts = acc[acc["step"] == first].set_index("seed")["n_examples"]
        rows.append(dict(experiment=r.experiment, label=r.label, metric="borderline_n", setting=setting,
                         **_seed_stats(counts.astype(float))))
        for metric, step in (("borderline_acc_before", first), ("borderline_acc_after", last)):
            s = acc[acc["step"] == step]
            n = s["n_examples"].sum()  # pooled over seeds, as claim A5
            value = 100 * (s["value"] * s["n_examples"]).sum() / n if n else np.nan
            rows.append(dict(experiment=r.experiment, label=r.label, metric=metric, value=value, sd=np.nan,
                             n=len(s), setting=setting + ", pooled over seeds"))
    return pd.DataFrame(rows)


def minima_schedules(tables: dict) -> pd.DataFrame:
    s = tables["minima_schedules"]
    s = s[s["metric"] == "test_acc"].assign(variant=lambda f: f["run"].str.replace(r"_s\d+$", "", regex=True))
    rows = []
    for (exp, variant), g in s.groupby(["experiment", "variant"], sort=False):
        rows.append(dict(experiment=exp, variant=variant, metric="test_acc",
                         setting=f"{exp}/{variant}: {g['schedule'].iloc[0]}, {g['epoch'].max():.0f} epochs",
                         **_seed_stats(100 * g.set_index("seed")["value"])))
    return pd.DataFrame(rows)


HEINIT_KEYS = ["sweep", "inputs", "init", "width", "depth", "n_samples", "input_dim", "metric"]


def _heinit(tables: dict, column: str) -> pd.DataFrame:
    """Per configuration: statistics over seeds of the mean over layers of `column`."""
    p = tables["heinit_per_layer"]
    rows = []
    for key, g in p.groupby(HEINIT_KEYS, sort=False):
        r = dict(zip(HEINIT_KEYS, key))
        per_seed = g.groupby("seed")[column].mean()
        rows.append(dict(r, setting=f"{r['sweep']} sweep: {r['init']}, width {r['width']}, depth {r['depth']}, "
                                    f"N={r['n_samples']} {r['inputs']} inputs of dim {r['input_dim']}",
                         **_seed_stats(per_seed)))
    return pd.DataFrame(rows)


def breakeven_maxima(tables: dict) -> pd.DataFrame:
    """Mean over seeds of each maximum, runs that completed and reached the threshold only."""
    m = tables["breakeven_maxima"]
    dataset = tables["breakeven_runs"].drop_duplicates("experiment").set_index("experiment")["dataset"]
    m = m.assign(dataset=m["experiment"].map(dataset))
    rows = []
    for key, g in m.groupby(["experiment", "dataset", "model", "lr", "batch_size", "metric"], sort=False):
        ok = g[g["valid"].astype(bool)]
        r = dict(zip(["experiment", "dataset", "model", "lr", "batch_size", "metric"], key))
        left_out = len(g) - len(ok)
        rows.append(dict(r, setting=f"{r['experiment']}: {r['model']}, {r['dataset']}, η={r['lr']:g}, "
                                    f"S={r['batch_size']}",
                         note=f"{left_out} run(s) left out: {g[~g['valid'].astype(bool)]['note'].iloc[0]}"
                         if left_out else "", **_seed_stats(ok.set_index("seed")["value"])))
    return pd.DataFrame(rows)


def breakeven_alpha(tables: dict) -> pd.DataFrame:
    """α* at each valid run's threshold snapshot, pooled per (dataset, model)."""
    runs = tables["breakeven_runs"]
    runs = runs[runs["valid"].astype(bool)]
    t = tables["breakeven_trajectories"]
    t = t[(t["metric"] == "alpha_star") & t["value"].notna()]
    at = t.merge(runs[["experiment", "run", "threshold_epoch", "dataset"]], on=["experiment", "run"])
    at = at[np.isclose(at["epoch"], at["threshold_epoch"])]
    rows = []
    for (dataset, model), g in at.groupby(["dataset", "model"], sort=False):
        rows.append(dict(dataset=dataset, model=model, metric="alpha_star",
                         setting=f"{model}, {dataset}: every valid run of {', '.join(sorted(g['experiment'].unique()))}"
                                 f" at its first snapshot with ≥ threshold train accuracy; range "
                                 f"{g['value'].min():.3g}-{g['value'].max():.3g}",
                         **_seed_stats(g["value"].reset_index(drop=True))))
    return pd.DataFrame(rows)


def paper_architectures(paper_config) -> dict[str, dict]:
    """{run label: model spec} of the Table 1 experiment in the paper-scale config file."""
    import yaml

    from .config import run_models

    with open(paper_config) as f:
        return run_models(yaml.safe_load(f)["experiments"][PARAMS_EXPERIMENT])


def architecture_params(specs: dict[str, dict], input_shape=(3, 32, 32), num_classes=10) -> pd.DataFrame:
    """Parameter counts of the paper's architectures ({run label: model spec}), built untrained."""
    from .models import build_model, count_parameters  # torch: only in the comparison job

    rows = [dict(experiment=PARAMS_EXPERIMENT, label=label, metric="params",
                 value=float(count_parameters(build_model(spec, input_shape, num_classes))), sd=np.nan, n=1,
                 setting=f"{PARAMS_EXPERIMENT}/{label} in configs/paper.yaml, counted untrained")
            for label, spec in specs.items()]
    return pd.DataFrame(rows)


# source -> (tables it needs, builder)
MEASUREMENTS = {
    "architecture_params": (("architecture_params",), lambda t: t["architecture_params"]),
    "iterative_table1": (("iterative_table1",), iterative_table1),
    "iterative_blocks": (("iterative_table1", "iterative_blocks"), iterative_blocks),
    "iterative_unroll": (("iterative_table1", "iterative_unroll"), iterative_unroll),
    "minima_schedules": (("minima_schedules",), minima_schedules),
    "heinit_ratio": (("heinit_per_layer",), lambda t: _heinit(t, "mean")),
    "heinit_eps": (("heinit_per_layer",), lambda t: _heinit(t, "eps_measured")),
    "breakeven_maxima": (("breakeven_maxima", "breakeven_runs"), breakeven_maxima),
    "breakeven_alpha": (("breakeven_runs", "breakeven_trajectories"), breakeven_alpha),
}
# ------------------------------------------------------------------ matching

def select(frame: pd.DataFrame, sel: dict) -> pd.DataFrame:
    """Rows of `frame` equal to every key of `sel` (floats compared with np.isclose)."""
    if frame.empty or any(k not in frame for k in sel):
        return frame.iloc[0:0]
    mask = np.ones(len(frame), dtype=bool)
    for k, v in sel.items():
        col = frame[k]
        if isinstance(v, float) and pd.api.types.is_numeric_dtype(col):
            mask &= np.isclose(col.to_numpy(dtype=float), v)
        else:
            mask &= (col == v).to_numpy()
    return frame[mask]


def _ours(frame: pd.DataFrame, sel: dict | None):
    """(value, sd, n, setting, note) of the matching measurement, or None when nothing matches."""
    if sel is None:
        return None
    hit = select(frame, sel)
    if hit.empty:
        return None
    note = "; ".join(n for n in hit.get("note", pd.Series(dtype=str)).fillna("") if n)
    if len(hit) > 1:  # e.g. two experiments in the same setting: pool them, say so
        note = "; ".join(filter(None, [f"pooled over {len(hit)} matching configurations", note]))
        w = hit["n"].where(hit["value"].notna(), 0)
        value = (hit["value"].fillna(0) * w).sum() / w.sum() if w.sum() else np.nan
        return value, np.nan, int(w.sum()), " + ".join(hit["setting"]), note
    r = hit.iloc[0]
    if not np.isfinite(r["value"]):
        note = "; ".join(filter(None, ["no finite value (every matching run diverged or was left out)", note]))
    return r["value"], r["sd"], int(r["n"]), r["setting"], note


def compare_rows(tables: dict[str, pd.DataFrame], enabled) -> pd.DataFrame:
    """One row per REFERENCE entry: the paper's value, ours, scale and note."""
    built, missing = {}, {}
    for source, (needs, build) in MEASUREMENTS.items():
        absent = [n for n in needs if n not in tables]
        if absent:
            missing[source] = absent
        else:
            built[source] = build(tables)
    rows = []
    for ref in REFERENCE:
        row = dict(paper=ref["paper"], experiment=ref["experiment"], quantity=ref["quantity"],
                   setting=ref["setting"], paper_value=ref["paper_value"], our_value=np.nan, our_sd=np.nan,
                   our_n=0, scale="not run", our_setting="", note="", source=ref["ref"])
        if papers.get(ref["paper"]).key not in enabled:
            row["note"] = f"paper {ref['paper']} is not in this configuration"
        elif ref["source"] in missing:
            row["note"] = "table(s) not available: " + ", ".join(missing[ref["source"]])
        else:
            frame = built[ref["source"]]
            for scale, sel in (("paper", ref["paper_sel"]), ("default", ref["default_sel"])):
                found = _ours(frame, sel)
                if found is not None:
                    value, sd, n, setting, note = found
                    row.update(our_value=value, our_sd=sd, our_n=n, scale=scale, our_setting=setting, note=note)
                    if scale == "default":
                        row["note"] = "; ".join(filter(None, ["different setting: default-scale analogue", note]))
                    break
            else:
                row["note"] = "no run in the paper's setting" + (
                    " nor a default-scale analogue in this configuration" if ref["default_sel"] else
                    " in this configuration (no default-scale analogue)")
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


# ------------------------------------------------------------------ files

def read_tables(paths: dict[str, str]) -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(path) for name, path in paths.items() if Path(path).stat().st_size > 0}


def _fmt(value, sd=np.nan) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    text = f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return text if not np.isfinite(sd) else f"{text} ± {sd:.2g}"


def display(part: pd.DataFrame) -> pd.DataFrame:
    """The table as people read it: ours as 'mean ± sd' or 'not run'."""
    return pd.DataFrame({
        "experiment": part["experiment"], "quantity": part["quantity"], "paper's setting": part["setting"],
        "paper": [_fmt(v) for v in part["paper_value"]],
        "ours": [_fmt(v, s) if sc != "not run" else "not run"
                 for v, s, sc in zip(part["our_value"], part["our_sd"], part["scale"])],
        "scale": part["scale"], "our setting": part["our_setting"], "note": part["note"], "source": part["source"]})


def markdown(table: pd.DataFrame) -> str:
    """A count line, then one section per paper."""
    counts = table["scale"].value_counts().to_dict()
    lines = ["# The papers' numbers beside ours", "",
             f"{len(table)} numbers from the papers: {counts.get('paper', 0)} compared in the paper's setting, "
             f"{counts.get('default', 0)} against a default-scale analogue (a different, smaller setting: "
             f"see 'our setting'), {counts.get('not run', 0)} not run. Ours: mean ± sd over seeds. "
             "Paper values: ../shared/PAPERS.md (column 'source').", ""]
    for paper in sorted(table["paper"].unique()):
        shown = display(table[table["paper"] == paper])
        shown = shown.apply(lambda col: col.astype(str).str.replace("|", r"\|", regex=False))
        lines += [f"## {papers.get(paper).title}", "", shown.to_markdown(index=False, disable_numparse=True), ""]
    return "\n".join(lines)


def write_comparison(paths: dict[str, str], enabled, csv_path, md_path, paper_config=None) -> pd.DataFrame:
    """The comparison from the paper tables at `paths`, plus the parameter counts of the
    Table 1 architectures in `paper_config` (configs/paper.yaml) when it is given."""
    tables = read_tables(paths)
    if paper_config:
        tables["architecture_params"] = architecture_params(paper_architectures(paper_config))
    table = compare_rows(tables, enabled)
    atomic_write_text(csv_path, table.to_csv(index=False))
    atomic_write_text(md_path, markdown(table))
    return table
