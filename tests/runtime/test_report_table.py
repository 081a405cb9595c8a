"""The final table fits 80 columns; report.md keeps every figure."""

from __future__ import annotations

import importlib
import io
from pathlib import Path
from typing import Any

import pytest

from runtime.report import markdown, summary_table
from runtime.report.table import WIDTH, render


@pytest.fixture
def sample(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    return importlib.import_module("report_sample")


def _rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_the_table_fits_80_columns_without_wrapping(sample: Any) -> None:
    report = sample.sample_report()
    for width in (WIDTH, 200):  # its natural width, not squeezed by the console
        lines = _rows(render(report, width))
        assert max(len(line) for line in lines) <= WIDTH, "\n".join(lines)
        # title, header, rule, one line per stage, one caption line
        assert len(lines) == 3 + len(report["stages"]) + 1, "\n".join(lines)
    text = render(report)
    assert "quant.calibrate" in text and "44.8 MB" in text and "98.30" in text
    assert "0.248*" in text and "* noisy" in text and "load 2.7 on 2 CPUs" in text


def test_long_names_are_cut_not_wrapped(sample: Any) -> None:
    report = sample.sample_report()
    report["stages"][-1].update(op="replace.depthwise_separable", model="a_very_long_student")
    lines = _rows(render(report, 200))
    assert max(len(line) for line in lines) <= WIDTH
    assert len(lines) == 3 + len(report["stages"]) + 1
    assert "replace.depthw…" in lines[-2]


def test_summary_table_prints_at_most_80_columns(sample: Any) -> None:
    out = io.StringIO()
    summary_table(sample.sample_report(), file=out)
    assert 0 < max(len(line) for line in out.getvalue().splitlines()) <= WIDTH


def test_report_md_keeps_every_figure(sample: Any) -> None:
    md = markdown(sample.sample_report())
    assert md.startswith("# kdr run: quickstart")
    for column in ("MACs", "sparsity", "min@1", "spread@1", "cpu@1", "spread@32", "load"):
        assert f"| {column} |" in md
    assert "| zipped | sparsity | N:M |" in md
    assert "`003-prune.channels-student`" in md  # full pass ids
    assert "0.248*" in md and "90%" in md  # the noisy figure and its spread
    assert "spread above 50%" in md and "on 2 CPUs" in md


def test_sparsity_and_compressed_size_are_in_both(sample: Any) -> None:
    report = sample.sparse_report()
    lines = _rows(render(report, 200))
    assert max(len(line) for line in lines) <= WIDTH, "\n".join(lines)
    header = lines[1].split()
    assert header[header.index("size") + 1 : header.index("size") + 4] == ["zipped", "sp", "%"]
    last = lines[-2].split()  # the last stage: 2:4 on top of 50%, then its recovery
    assert last[:3] == ["7", "distill", "student"] and "75.0" in last and "139" in last
    md = markdown(report)
    row = next(line for line in md.splitlines() if line.startswith("| `006-distill-student`"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[7:10] == ["139 KB", "75.0%", "2:4 100%"]  # zipped, sparsity, N:M
    assert "Sparsity: share of exactly-zero entries" in md and "zlib level 1" in md
