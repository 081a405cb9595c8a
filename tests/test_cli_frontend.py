"""The front-end commands of the CLI: fmt, explain, check (in-process, plus one subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kdr.cli import main

ROOT = Path(__file__).resolve().parents[1]
CANONICAL = "model student = convnet(width=16)\n\ntrain for 3 epochs # go\nthen evaluate\n"
MESSY = "model student=convnet( width=16 )\ntrain for 3 epochs   # go\n  then evaluate"
SYNTAX_ERROR = "model student = convnet(width=16)\ntrain student for 3 epochs\nevaluate student\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_fmt_check_passes_on_canonical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "ok.kdr", CANONICAL)
    assert main(["fmt", "--check", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == CANONICAL
    assert "would be reformatted" not in capsys.readouterr().err


def test_fmt_check_fails_on_messy_without_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "messy.kdr", MESSY)
    assert main(["fmt", "--check", str(path)]) == 1
    assert path.read_text(encoding="utf-8") == MESSY
    assert f"{path}: would be reformatted" in capsys.readouterr().err


def test_fmt_rewrites_in_place_idempotently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "messy.kdr", MESSY)
    assert main(["fmt", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == CANONICAL
    assert "reformatted" in capsys.readouterr().err
    assert main(["fmt", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == CANONICAL
    assert capsys.readouterr().err == ""
    assert main(["fmt", "--check", str(path)]) == 0


def test_fmt_refuses_a_file_with_syntax_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "bad.kdr", SYNTAX_ERROR)
    assert main(["fmt", str(path)]) == 1
    assert path.read_text(encoding="utf-8") == SYNTAX_ERROR
    err = capsys.readouterr().err
    assert f"{path}:3:1: error[KDR001]: missing `then` between two stages" in err


def test_fmt_check_on_the_shipped_recipes(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in (ROOT / "recipes").glob("*.kdr"))
    assert len(files) >= 8
    assert main(["fmt", "--check", *files]) == 0


def test_explain_prints_bad_and_fixed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "KDR001"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("KDR001 (error): syntax error")
    bad, fixed = out.index("Example that triggers it:"), out.index("Fixed:")
    assert bad < fixed
    assert "    distill student from teacher for 3 epochs" in out[bad:fixed]
    assert "    then distill student from teacher for 3 epochs" in out[fixed:]


def test_explain_unknown_code_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "KDR998"]) == 2
    err = capsys.readouterr().err
    assert "unknown code `KDR998`" in err
    assert "KDR001" in err


def test_check_reports_a_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "bad.kdr", SYNTAX_ERROR)
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"{path}:3:1: error[KDR001]: missing `then` between two stages"
    assert " 3 | evaluate student" in err
    assert "1 error" in err


def test_check_reports_every_syntax_error_sorted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = (ROOT / "tests" / "fixtures" / "syntax" / "several_errors.kdr").read_text()
    path = write(tmp_path, "several.kdr", source)
    assert main(["check", "--json", str(path)]) == 1
    items = json.loads(capsys.readouterr().out)
    positions = [(d["line"], d["column"]) for d in items]
    assert len(items) >= 4 and positions == sorted(positions)
    assert {d["code"] for d in items} == {"KDR001"}


def test_check_json_has_the_spec_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "bad.kdr", SYNTAX_ERROR)
    assert main(["check", "--json", str(path)]) == 1
    items = json.loads(capsys.readouterr().out)
    assert len(items) == 1
    d = items[0]
    assert set(d) == {
        "code",
        "severity",
        "message",
        "file",
        "line",
        "column",
        "end_line",
        "end_column",
        "notes",
    }
    assert (d["code"], d["severity"], d["file"]) == ("KDR001", "error", str(path))
    assert (d["line"], d["column"], d["end_line"], d["end_column"]) == (3, 1, 3, 9)
    assert d["message"] == "missing `then` between two stages"
    assert isinstance(d["notes"], list) and d["notes"][0]["kind"] == "help"


def test_check_clean_recipe_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(ROOT / "recipes" / "quickstart.kdr")]) == 0
    assert "error[" not in capsys.readouterr().err


def test_check_does_not_import_torch() -> None:
    code = (
        "import kdr.cli, sys; kdr.cli.main(['check', 'recipes/quickstart.kdr']); "
        "print('torch' in sys.modules)"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("kdr 0.")


def test_every_option_has_help() -> None:
    import argparse

    from kdr.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {action.dest}"
        for name, sub in commands.choices.items()
        for action in sub._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert missing == []
    assert all(a.help for a in commands._choices_actions)
