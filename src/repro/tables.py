"""Every paper's tables are written the same way: CSV at full precision for machines,
Markdown (and optionally LaTeX) rounded to one number format for people, each file
written atomically (repro.io), so a killed job never leaves a half-written table."""

from __future__ import annotations

import math

import pandas as pd

from .io import atomic_write_text

# the one number format of the human-readable tables (tabulate/str.format spec)
FLOAT_FORMAT = ".4g"


def format_number(value, sd=None, digits: int = 4) -> str:
    """`value` to `digits` significant digits ("n/a" when missing or not finite), with
    " ± sd" (2 significant digits) when a finite `sd` is given."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    text = f"{value:.{digits}g}"
    if sd is None or (isinstance(sd, float) and not math.isfinite(sd)):
        return text
    return f"{text} ± {sd:.2g}"


def write_table(frame: pd.DataFrame, csv_path, md_path=None, tex_path=None, *,
                floatfmt: str = FLOAT_FORMAT) -> None:
    """Write `frame` (no index) to each path given: CSV at full precision, Markdown and
    LaTeX with floats as `floatfmt`. ``csv_path=None`` skips the CSV. An empty frame's
    Markdown is ``_empty_``."""
    if csv_path is not None:
        atomic_write_text(csv_path, frame.to_csv(index=False))
    if md_path is not None:
        body = frame.to_markdown(index=False, floatfmt=floatfmt) if len(frame) else "_empty_"
        atomic_write_text(md_path, body + "\n")
    if tex_path is not None:
        atomic_write_text(tex_path, frame.to_latex(index=False,
                                                   float_format=lambda x: format(x, floatfmt)))
