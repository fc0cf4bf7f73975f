"""Paper C's plan: settings, the sweeps, and what each sweep job is given and asks for.

This is the only module rules/heinit.smk imports, so it stays light (no torch, no
matplotlib): the workflow's parse step and every DAG build go through it. Settings
defaults live only in schemas/heinit.schema.yaml; `with_defaults` fills them through
repro.settings, the path the workflow's config check takes.
"""

from __future__ import annotations

import copy

from ..settings import check, load_schema

SWEEPS = ("paper", "width", "depth", "samples", "fresh", "real")
GAUSSIAN_SWEEPS = SWEEPS[:-1]
# the settings section that defines each sweep
SECTIONS = {"paper": "paper", "width": "width_sweep", "depth": "depth_sweep",
            "samples": "samples_sweep", "fresh": "fresh", "real": "real"}
# the settings every sweep depends on (besides its own section)
COMMON_KEYS = ("seeds", "input_dim", "n_outputs", "delta", "dtype", "chunk_size")

# figure stem -> (report caption file heinit_<caption>.rst, report subcategory); the
# real-input figure's stem names its dataset (figures.make_figures draws exactly these)
FIGURES = {
    "per_layer_paper": ("per_layer", "Per-layer ratios"),
    "per_layer_{dataset}": ("real", "Per-layer ratios"),
    "eps_vs_width": ("eps_width", "Epsilon"),
    "eps_vs_depth": ("eps_depth", "Epsilon"),
    "eps_vs_samples": ("eps_samples", "Epsilon"),
    "spread_vs_width": ("spread", "Spread"),
    "fresh": ("fresh", "Epsilon"),
}


def real_figure_stem(dataset: str) -> str:
    """Stem of the per-layer figure on real inputs from `dataset`."""
    return "per_layer_{dataset}".format(dataset=dataset)


def figures(settings: dict) -> dict:
    """:data:`FIGURES` with the real-input stem filled in from ``settings["real"]["dataset"]``."""
    dataset = settings["real"]["dataset"]
    return {stem.format(dataset=dataset): spec for stem, spec in FIGURES.items()}


# --------------------------------------------------------------------------- settings

def with_defaults(overrides: dict | None = None) -> dict:
    """The ``heinit:`` settings: `overrides` (not mutated) checked against the paper's
    schema, every missing key filled with its default (the one settings path,
    repro.settings). Raises repro.settings.ConfigError."""
    return check(copy.deepcopy(dict(overrides or {})), load_schema("heinit"), "heinit")


# --------------------------------------------------------------------------- rule params

def sweep_seeds(settings: dict, sweep: str) -> list[int]:
    """The seeds a sweep draws its networks from: its own section's ``seeds`` when set
    (e.g. the depth sweep's 5 seeds for C4), else the shared ``seeds``."""
    own = settings.get(SECTIONS[sweep], {}).get("seeds")
    return list(own if own is not None else settings["seeds"])


def sweep_params(settings: dict, sweep: str) -> dict:
    """Exactly what defines one sweep's numbers: the shared keys and the sweep's own section.

    ``settings`` is the workflow's ``heinit:`` config (schema defaults filled in). The
    rules pass this through ``params:``, so editing one sweep's section reruns that sweep
    only, and editing a shared key (seeds, dtype ...) reruns every sweep. ``input_dim`` is
    left out for the real-input sweep (the images fix it). Keys are sorted at every level.
    """
    if sweep not in SECTIONS:
        raise ValueError(f"sweep must be one of {SWEEPS}, got {sweep!r}")
    keys = [k for k in COMMON_KEYS if not (sweep == "real" and k == "input_dim")]
    out = {k: settings[k] for k in keys if k in settings}
    out[SECTIONS[sweep]] = dict(settings[SECTIONS[sweep]])
    return _key_sorted(out)


def _key_sorted(value):
    """Dicts with sorted keys, recursively: Snakemake compares params by their text, so the
    same settings written in another key order must not look like a change."""
    if isinstance(value, dict):
        return {k: _key_sorted(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_key_sorted(v) for v in value]
    return value


# --------------------------------------------------------------------------- resources

def _configurations(params: dict, sweep: str, real_shape=(5000, 784)):
    """(width, depth, n_samples, input_dim) of every network a sweep simulates."""
    cfg = with_defaults(params)
    p = cfg[SECTIONS[sweep]]
    n_seeds, n_inits, d = len(sweep_seeds(cfg, sweep)), len(p["inits"]), int(cfg["input_dim"])
    if sweep == "width":
        confs = [(m, p["depth"], p["n_samples"], d) for m in p["widths"]]
    elif sweep == "depth":
        confs = [(p["width"], L, p["n_samples"], d) for L in p["depths"]]
    elif sweep == "samples":
        confs = [(p["width"], p["depth"], n, d) for n in p["n_samples"]]
    elif sweep == "fresh":
        confs = [(p["width"], p["depth"], p["n_samples"], d)] * (int(p["n_batches"]) + 1)
    elif sweep == "real":
        n = real_shape[0] if p.get("n_samples") is None else p["n_samples"]
        confs = [(p["width"], p["depth"], n, real_shape[1])]
    else:
        confs = [(p["width"], p["depth"], p["n_samples"], d)]
    return [tuple(int(v) for v in c) for c in confs] * (n_seeds * n_inits)


def sweep_cost(params: dict, sweep: str, real_shape=(5000, 784)) -> dict:
    """Work and memory of one sweep, for the rules' resources and the performance notes.

    flops: 2 N m (n + 2 (L-1) m) + lower-order terms summed over networks (forward and
    backward matmuls); weights_mib: the largest network's weights in float64 (they are
    drawn in float64 before any cast).
    """
    confs = _configurations(params, sweep, real_shape)
    flops = sum(2.0 * n * m * (d + 2.0 * (L - 1) * m) for m, L, n, d in confs)
    weights = max(8.0 * (m * d + (L - 1) * m * m) for m, L, n, d in confs) / 2 ** 20
    return {"flops": flops, "weights_mib": weights, "networks": len(confs)}


def sweep_mem_mb(settings: dict, sweep: str) -> int:
    """A sweep job's memory request: torch (~0.7 GiB), the largest network's float64
    weights with headroom, and the ~256 MiB chunk working set."""
    cost = sweep_cost(sweep_params(settings, sweep), sweep)
    return int(1500 + 1.5 * cost["weights_mib"] + 300)


def sweep_runtime(settings: dict, sweep: str, attempt: int = 1) -> int:
    """A sweep job's time limit in minutes: the work at a pessimistic 1 GFLOP/s, plus 10,
    times the attempt number (a job killed at its limit is retried with more time)."""
    cost = sweep_cost(sweep_params(settings, sweep), sweep)
    return int((10 + cost["flops"] / 1e9 / 60) * int(attempt))


def real_data_problem(settings: dict, data_root, download: bool) -> str | None:
    """Why the real-input sweep's dataset cannot be loaded (None when it can), checked
    while the workflow is parsed so no job starts without its data."""
    from ..data_files import availability_error

    return availability_error(settings["real"]["dataset"], data_root, download)
