"""Golden rule fixtures: every code KDR100-KDR400 triggered at its line and column, and near misses.

Regenerate the ``.expected`` files after an intended change with

    KDR_UPDATE_GOLDEN=1 PYTHONPATH=. python -m pytest tests/compiler/test_rule_fixtures.py

and review the diff: each one must point at the right span.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kdr_golden import RULES, check_golden, compile_fixture, read_header

CASES = sorted(RULES.glob("*.kdr"))
#: Every code the compiler's rules and checks must have a trigger and a near miss for.
COVERED = [
    "KDR100",
    "KDR101",
    "KDR102",
    "KDR103",
    "KDR104",
    "KDR105",
    "KDR107",
    "KDR108",
    "KDR200",
    "KDR201",
    "KDR202",
    "KDR203",
    "KDR204",
    "KDR205",
    "KDR206",
    "KDR208",
    "KDR300",
    "KDR301",
    "KDR302",
    "KDR303",
    "KDR304",
    "KDR400",
]
#: KDR102 ranges of the spec, each with its own trigger fixture.
KDR102_TRIGGERS = [
    "prune_zero",
    "prune_hundred",
    "temperature_zero",
    "alpha_above_one",
    "alpha_negative",
    "epochs_zero",
    "label_smoothing_one",
    "label_smoothing_negative",
    "mixup_zero",
    "cutmix_negative",
    "calibrate_zero",
    "repeat_zero",
    "ema_one",
    "clip_grad_zero",
    "weight_decay_negative",
    "gamma_zero",
    "momentum_one",
    "milestones_decreasing",
    "milestone_zero",
    "warmup_zero",
    "val_zero",
    "poly_power_zero",
    "linear_end_one",
]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_rule_fixture(path: Path) -> None:
    header, result, text = compile_fixture(path)
    assert header.title, "every fixture opens with `# title: ...`"
    assert header.expect or header.absent, "a fixture expects or excludes at least one code"
    check_golden(path.with_suffix(".expected"), text)
    # Independent of the golden text: the expected codes at the expected places.
    found = [
        (d.code, d.span.line if d.span else None, d.span.column if d.span else None)
        for d in result.diagnostics
    ]
    for code, line, column in header.expect:
        if line is None:
            assert any(c == code for c, _, _ in found), f"{code} not reported: {found}"
        else:
            assert (code, line, column) in found, f"{code} not at {line}:{column}: {found}"
    for code in header.absent:
        assert all(c != code for c, _, _ in found), f"{code} reported: {found}"
    positions = [(d.span.line, d.span.column) for d in result.diagnostics if d.span]
    assert positions == sorted(positions), "diagnostics come sorted by position"
    if result.has_errors:
        assert result.plan is None
    else:
        assert result.plan is not None and result.plan.passes


def test_every_code_has_a_trigger_and_a_near_miss() -> None:
    triggers: dict[str, int] = {}
    misses: dict[str, int] = {}
    for path in CASES:
        header = read_header(path.read_text(encoding="utf-8"))
        for code, _, _ in header.expect:
            triggers[code] = triggers.get(code, 0) + 1
        for code in header.absent:
            misses[code] = misses.get(code, 0) + 1
    assert [c for c in COVERED if not triggers.get(c)] == []
    assert [c for c in COVERED if not misses.get(c)] == []
    stems = {p.stem for p in CASES}
    assert [t for t in KDR102_TRIGGERS if f"kdr102_{t}" not in stems] == []


def test_every_fixture_has_its_expected_file() -> None:
    stray = sorted(p.name for p in RULES.glob("*.expected") if not p.with_suffix(".kdr").exists())
    assert stray == []
