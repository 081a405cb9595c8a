"""The code catalogue behind `kdr explain`: examples compile as they claim; it is complete."""

from __future__ import annotations

import re

import pytest
from kdr_golden import ROOT

from compiler.catalogue import CATALOGUE, explain
from compiler.driver import compile_source
from kdr.cli import main

CHECKABLE = [c for c in CATALOGUE.values() if not c.model_aware]
_SET = re.compile(r"^# kdr check --set (\S+)$", re.M)


def _overrides(source: str) -> list[str]:
    return _SET.findall(source)


def test_catalogue_covers_the_spec_minimum():
    spec = [
        "KDR001",
        "KDR100",
        "KDR101",
        "KDR102",
        "KDR103",
        "KDR104",
        "KDR105",
        "KDR200",
        "KDR201",
        "KDR202",
        "KDR203",
        "KDR204",
        "KDR205",
        "KDR206",
        "KDR207",
        "KDR300",
        "KDR301",
        "KDR302",
        "KDR303",
        "KDR304",
        "KDR400",
        "KDR500",
        "KDR501",
        "KDR502",
        "KDR503",
        "KDR504",
        "KDR999",
    ]
    assert [c for c in spec if c not in CATALOGUE] == []
    assert len(CHECKABLE) >= 20


@pytest.mark.parametrize("info", CHECKABLE, ids=[c.code for c in CHECKABLE])
def test_bad_example_raises_exactly_its_code(info):
    result = compile_source(info.bad, "bad.kdr", _overrides(info.bad))
    codes = [d.code for d in result.diagnostics]
    assert info.code in codes
    assert all(d.severity == info.severity for d in result.diagnostics if d.code == info.code)


@pytest.mark.parametrize("info", CHECKABLE, ids=[c.code for c in CHECKABLE])
def test_fixed_example_is_clean(info):
    result = compile_source(info.fixed, "fixed.kdr", _overrides(info.fixed))
    assert [d.code for d in result.diagnostics] == []
    assert result.plan is not None


@pytest.mark.parametrize("code", list(CATALOGUE))
def test_explain_prints_every_code(code, capsys):
    assert main(["explain", code]) == 0
    out = capsys.readouterr().out
    info = CATALOGUE[code]
    assert out.startswith(f"{code} ({info.severity}): {info.title}\n")
    assert info.explanation.splitlines()[0] in out
    if info.bad.strip():
        assert "Example that triggers it:" in out
    assert explain(code.lower()) == out


def test_explain_unknown_code(capsys):
    assert main(["explain", "KDR998"]) == 2
    assert "unknown code" in capsys.readouterr().err


def test_every_emitted_code_is_in_the_catalogue():
    pattern = re.compile(r"[\"'](KDR\d{3})[\"']")
    emitted: set[str] = set()
    for package in ("compiler", "recipe_lang", "kdr"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name in ("codes.py", "catalogue.py"):
                continue
            emitted |= set(pattern.findall(path.read_text(encoding="utf-8")))
    assert {"KDR100", "KDR200", "KDR400", "KDR001"} <= emitted
    assert sorted(emitted - set(CATALOGUE)) == []
