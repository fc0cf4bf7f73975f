"""Paper C, "The Benefits of Over-parameterization at Initialization in Deep ReLU Networks".

    plan      settings (schema defaults), sweeps, params and resources for the rules (no torch)
    simulate  the norm-ratio simulation at initialization (torch)
    theory    the bound eps(m), its m^-1/2 companion and the measured deviations (numpy)
    measure   one sweep's per-layer table (the torch jobs)
    tables    summary, paper-setting and Glorot-slope tables
    claims    claims C1-C4 as repro.claims.Claim records
    figures   the paper's figures

The simulation's public names (``repro.heinit.norm_ratios`` and the rest of
:mod:`repro.heinit.simulate`) are re-exported here lazily, on first attribute access, so
that importing ``repro.heinit.plan`` while Snakemake builds the DAG never imports torch.
"""

from __future__ import annotations

import importlib

_SIMULATE_NAMES = (
    "INITS", "DEFAULT_N_OUTPUTS", "DEFAULT_CHUNK_BYTES", "NormRatioArrays",
    "resolve_device", "resolve_dtype", "weight_variance", "make_weights", "gaussian_inputs",
    "random_targets", "auto_chunk_size", "compute_norm_ratios", "simulate_network",
    "norm_ratio_arrays", "norm_ratios", "norm_ratios_for_inputs", "norm_ratios_loop_numpy",
    "theory_epsilon", "theory_epsilon_rate", "required_width", "deviation_stats", "measured_epsilon",
)
__all__ = list(_SIMULATE_NAMES)


def __getattr__(name: str):
    if name in _SIMULATE_NAMES:
        value = getattr(importlib.import_module(".simulate", __name__), name)
        globals()[name] = value          # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SIMULATE_NAMES))
