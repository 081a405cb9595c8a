"""Several mistakes in one run, sorted by position; ``--set`` overrides; the CLI's exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from kdr_golden import ROOT

from compiler.driver import compile_source
from kdr.cli import main

H = "model teacher = convnet(width=32)\nmodel student = convnet(width=16)\n"

MANY = (
    "param epochs = 3\n"  # 1
    "set sed = 1\n"  # 2: KDR100 unknown setting
    "model teacher = convnet(width=32)\n"  # 3
    "model student = convnet(width=16)\n"  # 4
    "model student = convnet(width=8)\n"  # 5: KDR101 duplicate
    "train teacher for $epochs epochs with label_smoothing 1\n"  # 6: KDR102
    "then distill student from teacher temp 4 for 2 epochs\n"  # 7: KDR103
    "then prune student 50 channels with distill from teacher for 1 epoch\n"  # 8: KDR104
    "then quantize student int8\n"  # 9
    "then train student for 1 epoch with distill from teacher\n"  # 10: KDR200
    "then quantize student int8\n"  # 11: KDR203 (and KDR200 is not raised for quantize)
)


def test_many_independent_mistakes_are_all_reported_in_order():
    result = compile_source(MANY, "many.kdr")
    got = [(d.code, d.span.line, d.span.column) for d in result.diagnostics if d.span]
    assert got == [
        ("KDR100", 2, 5),
        ("KDR101", 5, 7),
        ("KDR102", 6, 55),
        ("KDR103", 7, 35),
        ("KDR104", 8, 20),
        ("KDR200", 10, 6),
        ("KDR203", 11, 6),
    ]
    assert len(got) == len(result.diagnostics)
    assert result.plan is None


def test_cli_check_reports_them_all_as_json(tmp_path, capsys):
    path = tmp_path / "many.kdr"
    path.write_text(MANY, encoding="utf-8")
    assert main(["check", "--json", str(path)]) == 1
    items = json.loads(capsys.readouterr().out)
    assert [i["code"] for i in items] == [
        "KDR100", "KDR101", "KDR102", "KDR103", "KDR104", "KDR200", "KDR203"
    ]  # fmt: skip
    first = items[0]
    assert set(first) >= {"code", "severity", "message", "file", "line", "column", "notes"}
    assert (first["line"], first["column"], first["file"]) == (2, 5, str(path))


def test_cli_check_text_first_lines(tmp_path, capsys):
    path = tmp_path / "many.kdr"
    path.write_text(MANY, encoding="utf-8")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2:5: error[KDR100]: unknown setting `sed`" in err
    assert err.rstrip().endswith("7 errors, 0 warnings")


def test_warnings_only_exit_zero(tmp_path):
    path = tmp_path / "w.kdr"
    path.write_text(H + "train student for 1 epoch\nthen prune student 50% weights\n")
    assert main(["check", str(path)]) == 0


# ---- --set --------------------------------------------------------------------------------------

BASE = (
    "param epochs = 3\nparam ratio = 40%\n"
    + H
    + (
        "train teacher for $epochs epochs\nthen distill student from teacher for $epochs epochs\n"
        "then prune student $ratio with distill from teacher for 1 epoch\n"
    )
)


def test_set_changes_params_and_resolved_values():
    plain = compile_source(BASE).plan
    result = compile_source(BASE, overrides=["epochs=1", "ratio=25%"])
    assert plain is not None and result.plan is not None
    assert plain.params == {"epochs": 3, "ratio": 0.4}
    assert result.plan.params == {"epochs": 1, "ratio": 0.25}
    epochs = [getattr(p.params, "epochs", None) for p in result.plan.passes]
    assert epochs == [1, 1, None, 1]
    assert result.plan.passes[2].params.ratio == 0.25
    assert result.plan.hash != plain.hash


def test_set_unknown_name_and_bad_value():
    result = compile_source(BASE, overrides=["epoch=1"])
    (d,) = result.diagnostics
    assert d.code == "KDR105" and "epoch" in d.message
    assert [n.message for n in d.notes] == ["did you mean `epochs`?"]
    result = compile_source(BASE, overrides=["epochs=(("])
    (d,) = result.diagnostics
    assert d.code == "KDR105" and d.span is not None and d.span.line == 1
    result = compile_source(BASE, overrides=["=3"])
    assert [d.code for d in result.diagnostics] == ["KDR105"]


def test_set_value_out_of_range_points_at_the_use():
    result = compile_source(BASE, overrides=["ratio=100%"])
    (d,) = result.diagnostics
    assert (d.code, d.span.line) == ("KDR102", 7)  # type: ignore[union-attr]
    assert "--set" in d.notes[0].message


def test_cli_compile_set(tmp_path):
    out = tmp_path / "plan.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "kdr", "compile", "recipes/quickstart.kdr", "-o", str(out)]
    subprocess.run([*cmd, "--set", "epochs=1"], cwd=ROOT, env=env, check=True)
    plan = json.loads(out.read_text())
    assert plan["params"] == {"epochs": 1}
    assert plan["passes"][0]["params"]["epochs"] == 1
    bad = subprocess.run(
        [*cmd, "--set", "epoch=1"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "error[KDR105]" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_compile_formats(capsys):
    assert main(["compile", "recipes/quickstart.kdr", "--format", "text"]) == 0
    assert capsys.readouterr().out.startswith("plan quickstart (recipes/quickstart.kdr) hash ")
    assert main(["compile", "recipes/quickstart.kdr", "--format", "dot"]) == 0
    assert capsys.readouterr().out.startswith('digraph "quickstart"')
