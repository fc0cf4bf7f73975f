"""The shared table writer (repro.tables): CSV at full precision, Markdown/LaTeX rounded."""

import math

import pandas as pd

from repro.tables import format_number, write_table


def test_write_table_csv_full_precision_markdown_and_latex_rounded(tmp_path):
    frame = pd.DataFrame({"name": ["a", "b"], "value": [1.23456789, 2e-7]})
    csv, md, tex = tmp_path / "t" / "x.csv", tmp_path / "t" / "x.md", tmp_path / "t" / "x.tex"
    write_table(frame, csv, md, tex)
    pd.testing.assert_frame_equal(pd.read_csv(csv), frame)
    assert md.read_text() == frame.to_markdown(index=False, floatfmt=".4g") + "\n"
    assert "1.235" in md.read_text() and "1.23456789" not in md.read_text()
    assert "1.235" in tex.read_text() and "\\begin{tabular}" in tex.read_text()
    assert not list(tmp_path.glob("t/.*"))                  # no temporary file left behind


def test_write_table_skips_missing_paths_and_marks_empty(tmp_path):
    write_table(pd.DataFrame(columns=["a"]), None, tmp_path / "e.md")
    assert (tmp_path / "e.md").read_text() == "_empty_\n"
    assert [p.name for p in tmp_path.iterdir()] == ["e.md"]


def test_format_number():
    assert format_number(1234.5678) == "1235" and format_number(0.000123456) == "0.0001235"
    assert format_number(None) == "n/a" and format_number(math.nan) == "n/a"
    assert format_number(1.5, 0.0345) == "1.5 ± 0.035" and format_number(1.5, math.nan) == "1.5"
    assert format_number(3, digits=2) == "3"
