"""Every example recipe compiles without errors, and its plan is a golden file.

Plans are compiled with the path relative to the repository root (``recipes/NAME.kdr``), so
they are byte-identical on every machine. Regenerate with ``KDR_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import pytest
from kdr_golden import PLANS, RECIPES, ROOT, check_golden

from compiler.driver import compile_file
from compiler.plan_format import plan_to_dot, plan_to_text

CASES = sorted(RECIPES.glob("*.kdr"))
#: Warnings and notes the examples are known to give (everything else must be clean).
KNOWN = {
    "budget_prune": ["KDR400"],
    "gradual_kd": ["KDR301"],
    "nm_sparse": ["KDR301"],
    "oneliner": ["KDR300"],
    "unstructured": ["KDR301"],
    "warm_start": ["KDR400"],
}


def test_there_are_recipes():
    assert len(CASES) >= 10


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_recipe_compiles_to_its_golden_plan(path):
    rel = path.relative_to(ROOT).as_posix()
    result = compile_file(rel)
    assert not result.has_errors, [f"{d.code} {d.message}" for d in result.diagnostics]
    assert result.plan is not None and result.plan.passes
    assert result.plan.source.path == rel
    assert [d.code for d in result.diagnostics] == KNOWN.get(path.stem, [])
    check_golden(PLANS / f"{path.stem}.json", result.plan.to_json())


def test_no_stray_golden_plans():
    stems = {p.stem for p in CASES}
    stray = [p.name for p in PLANS.glob("*.json") if p.stem not in stems]
    assert stray == []


def test_quickstart_text_and_dot():
    result = compile_file("recipes/quickstart.kdr")
    assert result.plan is not None
    text = plan_to_text(result.plan)
    check_golden(PLANS / "quickstart.txt", text)
    assert text.splitlines()[1].split()[:3] == ["id", "op", "subject"]
    assert len(text.splitlines()) == 2 + len(result.plan.passes)
    dot = plan_to_dot(result.plan)
    assert dot.startswith('digraph "quickstart" {') and dot.rstrip().endswith("}")
    edges = sum(len(p.depends_on) for p in result.plan.passes)
    assert dot.count(" -> ") == edges
