"""A fast, fixed-seed slice of the fuzzing campaign in ``bench/fuzz.py``: zero findings.

The full campaign (``python bench/fuzz.py``, 100,000 inputs) writes ``bench/results/fuzz.json``;
this slice runs the same harness on 1,500 inputs so that a regression shows up in CI.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_fuzz() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kdr_bench_fuzz", ROOT / "bench" / "fuzz.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


fuzz = _load_fuzz()


def _describe(findings: list[dict]) -> str:
    return "\n".join(
        f"[{f['kind']}] x{f['count']} {f['detail']}\n  input: {f['input'][:300]!r}"
        f"\n  overrides: {f['overrides']}"
        for f in findings
    )


def test_fuzz_slice_has_no_findings() -> None:
    corpus, files = fuzz.load_corpus()
    assert files >= 10 and len(corpus) >= 100
    campaign = fuzz.Campaign(seed=20260, count=1500, probes=False, hang_ms=2000.0)
    campaign.corpus_files = files
    campaign.run(corpus)
    data = campaign.report(None)
    assert data["inputs"] == 1500
    assert data["findings"] == [], _describe(data["findings"])
    # The slice reaches the deep end: many inputs compile to plans, many are rejected.
    assert data["planned"] >= 150
    assert data["diagnostic_codes"].get("KDR001", 0) >= 300


@pytest.mark.parametrize(
    ("text", "overrides"),
    [
        ("model student = convnet(width=4)\nrepeat 1000000 { train for 1 step }\n", []),
        ("repeat 1000 { repeat 1000 { evaluate } }\n", []),
        ("param n = 2\nrepeat $n { evaluate }\n", ["n=1000000"]),
    ],
    ids=["huge-repeat", "nested-repeats", "huge-repeat-by-set"],
)
def test_huge_repeat_is_refused_quickly(text: str, overrides: list[str]) -> None:
    """Unrolling is capped (compiler.vocab.MAX_STEPS); going over it is refused at once."""
    outcome = fuzz.check_input(text, overrides, limit_s=1.5)  # the alarm stops a slow one
    assert not outcome.timed_out and outcome.ms < 1000, f"{outcome.ms:.0f} ms"
    assert "KDR102" in outcome.codes
    assert not outcome.problems


@pytest.mark.parametrize(
    "text",
    [
        "model student = convnet(width=1e309)\ntrain student for 1 epoch\n",
        "param x = 1e999\ntrain for 1 epoch\n",
    ],
    ids=["inf-kwarg", "inf-param"],
)
def test_non_finite_numbers_are_rejected(text: str) -> None:
    """``1e309`` reads as infinity; a plan holding it would serialise it as JSON null."""
    outcome = fuzz.check_input(text, [], limit_s=5.0)
    assert not outcome.problems, outcome.problems
    assert not outcome.planned


def test_deep_nesting_is_a_diagnostic() -> None:
    for text in (
        "repeat 1 { " * 3000 + "evaluate" + " }" * 3000,
        "set optimizer = sgd(lr=" + "f(" * 3000 + "1" + ")" * 3000 + ")\n",
    ):
        outcome = fuzz.check_input(text, [], limit_s=5.0)
        assert not outcome.problems, outcome.problems
        assert "KDR102" in outcome.codes


def test_tame_repeats_bounds_generated_unrolling() -> None:
    assert fuzz.tame_repeats("repeat 1000 { evaluate }") == "repeat 1 { evaluate }"
    nested = fuzz.tame_repeats("repeat 20 { repeat 20 { evaluate } }")
    assert nested == "repeat 20 { repeat 1 { evaluate } }"
    assert fuzz.tame_repeats("repeat 3 { evaluate }") == "repeat 3 { evaluate }"


FUZZ_FIXTURES = Path(__file__).parent / "fixtures" / "fuzz"


@pytest.mark.parametrize("path", sorted(FUZZ_FIXTURES.glob("*.kdr")), ids=lambda p: p.stem)
def test_past_findings_stay_fixed(path: Path) -> None:
    """Inputs the campaign once flagged: 1,000 nested repeats were sized quadratically (a hang),
    and `prune to 1e309 params` overflowed converting the budget (KDR999)."""
    outcome = fuzz.check_input(path.read_text(), [], limit_s=1.5)
    assert not outcome.timed_out and outcome.ms < 1000, f"{outcome.ms:.0f} ms"
    assert not outcome.problems, outcome.problems
    assert "KDR999" not in outcome.codes
