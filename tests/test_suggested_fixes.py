"""Every fix that a KDR204 / KDR501 help text suggests works: applied to the recipe that raised
the diagnostic, the recipe compiles and passes the model-aware dry run (local weight files and
stand-in zoo weights; nothing is downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kdr.cli import main

DATA = "data = mnist10k(batch_size=16, limit=64, eval_limit=64)\n"
STUDENT = "model student = convnet(width=4)\n"


def _check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    path = tmp_path / "r.kdr"
    path.write_text(text, encoding="utf-8")
    capsys.readouterr()
    main(["check", "--models", "--json", str(path)])
    return [d for d in json.loads(capsys.readouterr().out) if d["severity"] == "error"]


def _help(diag: dict) -> str:
    return " ".join(n["message"] for n in diag["notes"] if n["kind"] == "help")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_kdr204_fixes_for_a_convnet_teacher(workdir: Path, capsys) -> None:
    head = DATA + STUDENT + "model teacher = convnet(width=8)\n"
    stage = "distill student from teacher for 1 step\n"
    (error,) = _check(workdir, head + stage, capsys)
    assert error["code"] == "KDR204"
    advice = _help(error)
    # "train it first"
    assert "`train teacher for 3 epochs then ...`" in advice
    assert _check(workdir, head + "train teacher for 1 step\nthen " + stage, capsys) == []
    # "load trained weights ... from "teacher.pt""
    assert 'from "teacher.pt"' in advice
    from runtime.models import build_model

    weights = build_model("convnet", [], {"width": 8}, in_channels=1, num_classes=10)
    torch.save(weights.state_dict(), workdir / "teacher.pt")
    loaded = head.replace("convnet(width=8)", 'convnet(width=8) from "teacher.pt"')
    assert _check(workdir, loaded + stage, capsys) == []
    # no zoo weights are suggested for a model that has none
    assert "weights=" not in advice


def test_kdr204_zoo_weights_fix(workdir: Path, capsys, zoo_weights) -> None:
    head = DATA + STUDENT + "model teacher = resnet18()\n"
    stage = "distill student from teacher for 1 step\n"
    (error,) = _check(workdir, head + stage, capsys)
    assert error["code"] == "KDR204"
    assert '`resnet18(weights="DEFAULT")`' in _help(error)
    zoo_weights("resnet18")  # a stand-in for the zoo's weights
    fixed = head.replace("resnet18()", 'resnet18(weights="DEFAULT")')
    assert _check(workdir, fixed + stage, capsys) == []


def test_kdr501_fixes(workdir: Path, capsys) -> None:
    head = DATA + STUDENT + "model teacher = convnet(width=8, num_classes=5)\n"
    stages = "train teacher for 1 step\nthen distill student from teacher for 1 step\n"
    (error,) = _check(workdir, head + stages, capsys)
    assert error["code"] == "KDR501"
    advice = _help(error)
    assert "build `teacher` with num_classes=10" in advice
    assert _check(workdir, head.replace("num_classes=5", "num_classes=10") + stages, capsys) == []
    assert "leave `num_classes` out" in advice
    assert _check(workdir, head.replace(", num_classes=5", "") + stages, capsys) == []
