"""One HTML summary page per paper for `snakemake --report` (rule paper_page).

Why: the report shows Markdown and CSV files only as downloads, HTML inline; so each
paper's section opens with a page of its claims verdicts, its numbers beside the paper's
and the settings it ran with. A paper's report section is its `category` in
:mod:`repro.papers`; every report() flag of a paper uses it, so a paper's figures, tables
and page share one section. OVERVIEW is the section of what belongs to no one paper.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import yaml

from . import papers
from .claims import tally
from .io import atomic_write_text
from .paper_comparison import display

OVERVIEW = "Overview"

STYLE = """<style>
body{font-family:sans-serif;font-size:14px;margin:1em}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}
th{background:#f3f3f3} .holds{background:#dff0d8} .fails{background:#f8d7da}
.inconclusive{background:#fff3cd} pre{background:#f7f7f7;padding:0.5em;font-size:12px}
</style>"""


def paper_settings(config: dict, paper: str) -> dict:
    """What a paper's page shows as its settings: its experiments and its config section."""
    experiments = {name: exp for name, exp in config["experiments"].items() if exp.get("paper") == paper}
    return {"experiments": experiments, paper: config.get(paper) or {}}


def _table(frame: pd.DataFrame, verdict_col: str | None = None) -> str:
    if frame.empty:
        return "<p><em>none</em></p>"
    body = frame.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0)
    if verdict_col:  # colour each verdict cell
        for verdict in ("holds", "fails", "inconclusive"):
            body = body.replace(f"<td>{verdict}</td>", f'<td class="{verdict}">{verdict}</td>')
    return body


def _claims_section(claims: pd.DataFrame) -> str:
    if claims.empty:
        return "<h2>Claims</h2><p><em>No claim was evaluated for this paper.</em></p>"
    return ("<h2>Claims</h2>" + _table(tally(claims).iloc[:-1]) +
            "<p>Each claim: the statistic measured, the threshold fixed beforehand, our value and the "
            "verdict; the note says why a claim fails or is inconclusive.</p>"
            + _table(claims.drop(columns="paper"), "verdict"))


def _comparison_section(comparison: pd.DataFrame) -> str:
    return ("<h2>The paper's numbers beside ours</h2><p>scale <b>paper</b>: our run in the paper's setting; "
            "<b>default</b>: a default-scale analogue, a different (smaller) setting given in <i>our "
            "setting</i>; <b>not run</b>: nothing comparable was produced. Ours: mean ± sd over seeds "
            "(results/tables/paper_comparison.csv).</p>" + _table(display(comparison)))


def _settings_section(runs: pd.DataFrame, settings: dict) -> str:
    text = "<h2>Run settings</h2>"
    if len(runs):
        text += f"<p>{len(runs)} training runs (results/run_table.csv):</p>" + _table(runs.drop(columns="paper"))
    text += ("<p>The configured experiments and analysis settings of this paper (resolved per run in "
             "results/runs/&lt;experiment&gt;/&lt;run&gt;/status.json):</p><pre>"
             + html.escape(yaml.safe_dump({k: v for k, v in settings.items() if v}, sort_keys=False,
                                         default_flow_style=None, width=100)) + "</pre>")
    return text


def paper_page(paper: str, claims: pd.DataFrame, comparison: pd.DataFrame, runs: pd.DataFrame,
               settings: dict) -> str:
    """The page of one paper (paper = its key: iterative | minima | heinit | breakeven)."""
    entry = papers.get(paper)
    claims = claims[claims["paper"] == entry.id]
    comparison = comparison[comparison["paper"] == entry.id]
    runs = runs[runs["paper"] == paper] if "paper" in runs else runs.iloc[0:0]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{STYLE}</head><body>"
            f"<h1>{html.escape(entry.title)}</h1>" + _claims_section(claims) + _comparison_section(comparison)
            + _settings_section(runs, settings) + "</body></html>\n")


def write_paper_page(paper: str, claims_csv, comparison_csv, run_table_csv, settings: dict, out_html) -> None:
    runs = pd.read_csv(run_table_csv) if Path(run_table_csv).read_text().strip() else pd.DataFrame()
    page = paper_page(paper, pd.read_csv(claims_csv), pd.read_csv(comparison_csv), runs, settings)
    atomic_write_text(out_html, page)
