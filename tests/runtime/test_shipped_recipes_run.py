"""Shipped recipes run end to end as ``kdr check`` accepted them (small data, same stages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdr.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMALL_DATA = "mnist10k(batch_size=64, limit=256, eval_limit=256)"


def _report(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "report.json").read_text(encoding="utf-8"))["stages"]


@pytest.mark.slow
def test_budget_prune_meets_both_budgets(tmp_path: Path) -> None:
    """`prune to 2.5M params` then `prune to 40% macs`: the plan's budgets reach the runtime
    as the compiler wrote them, and the pruned model meets them (MACs within 2% of 40%)."""
    run_dir = tmp_path / "run"
    code = main(
        [
            "run",
            str(ROOT / "recipes" / "budget_prune.kdr"),
            "--data",
            SMALL_DATA,
            "--set",
            "epochs=1",
            "--run-dir",
            str(run_dir),
            "--quiet",
        ]
    )
    assert code == 0
    stages = [s for s in _report(run_dir) if s["model"] == "student"]
    cuts = [i for i, s in enumerate(stages) if s["op"] == "prune.channels"]
    assert len(cuts) == 2
    first, second = cuts
    assert stages[first]["params"] <= 2_500_000
    before, after = stages[second - 1]["macs"], stages[second]["macs"]
    assert abs(after - 0.4 * before) <= 0.02 * 0.4 * before, (before, after)
    assert stages[-1]["op"] == "evaluate" and stages[-1]["accuracy"] is not None
