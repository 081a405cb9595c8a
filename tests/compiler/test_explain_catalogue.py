"""The code catalogue behind `kdr explain`: examples compile as they claim; it is complete."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from kdr_golden import FIXTURES, ROOT

from compiler.catalogue import CATALOGUE, explain
from compiler.driver import compile_source
from kdr.cli import main

CHECKABLE = [c for c in CATALOGUE.values() if not c.model_aware]
MODEL_AWARE = [c for c in CATALOGUE.values() if c.model_aware and c.bad.strip()]
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


# ---- model-aware examples: `kdr check --models --json` on each, in process -------------------

#: Examples that today's runtime cannot check as they claim, with the bug that stops them.
#: Strict xfails: when the bug is fixed the test passes, fails as XPASS, and the entry goes.
KNOWN_BUGS: dict[tuple[str, str], str] = {}


def _no_int8_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.passes.quant_backends import config

    monkeypatch.setattr(config, "supported_engines", lambda: [])


#: What the machine must look like for an example (KDR503's bad example needs no int8 engine).
SETUP = {"KDR503": _no_int8_engine}


def _check_models(source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    path = tmp_path / "example.kdr"
    path.write_text(source, encoding="utf-8")
    capsys.readouterr()
    main(["check", "--models", "--json", str(path)])
    return json.loads(capsys.readouterr().out)


def _model_aware_cases(which: str) -> list:
    out = []
    for info in MODEL_AWARE:
        bug = KNOWN_BUGS.get((info.code, which))
        marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
        out.append(pytest.param(info, id=info.code, marks=marks))
    return out


@pytest.fixture
def example_env(tmp_path, monkeypatch, request):
    """A working directory, the catalogue's user models importable, the machine as required."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(FIXTURES / "models"))
    info = request.node.callspec.params["info"]
    if info.code in SETUP:
        SETUP[info.code](monkeypatch)
    return tmp_path


@pytest.mark.parametrize("info", _model_aware_cases("bad"))
def test_model_aware_bad_example_raises_exactly_its_code(info, example_env, capsys):
    diags = _check_models(info.bad, example_env, capsys)
    errors = sorted({d["code"] for d in diags if d["severity"] == "error"})
    assert errors == ([info.code] if info.severity == "error" else []), diags
    assert info.code in {d["code"] for d in diags}, diags
    assert all(d["severity"] == info.severity for d in diags if d["code"] == info.code)


@pytest.mark.parametrize("info", _model_aware_cases("fixed"))
def test_model_aware_fixed_example_has_no_error(info, example_env, capsys):
    assert info.fixed != info.bad
    diags = _check_models(info.fixed, example_env, capsys)
    assert [d for d in diags if d["severity"] == "error"] == []
    assert info.code not in {d["code"] for d in diags}, diags


@pytest.mark.slow
def test_export_example_under_kdr_run(tmp_path, monkeypatch, capsys):
    """KDR505 comes from the export itself: run its examples end to end (tiny model, 1 step)."""
    info = CATALOGUE["KDR505"]
    monkeypatch.chdir(tmp_path)
    for name, source, expected in (("bad", info.bad, 1), ("fixed", info.fixed, 0)):
        path = tmp_path / f"{name}.kdr"
        path.write_text(source, encoding="utf-8")
        status = main(["run", str(path), "--run-dir", str(tmp_path / name), "--quiet"])
        err = capsys.readouterr().err
        assert status == expected, err
        assert ("error[KDR505]" in err) == (name == "bad"), err
