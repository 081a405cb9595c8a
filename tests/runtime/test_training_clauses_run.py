"""Issue 13 end to end: what a recipe says about schedules, warmup, per-stage optimizers, EMA and
keep best is what `kdr run` records in report.json (each training's lr curve, validation curve
and kept epoch), stage by stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdr.cli import main

# 512 training images at batch 64: 8 steps an epoch; 128 held out for validation.
RECIPE = """\
set schedule = multistep(milestones=[1], gamma=0.1)
data = mnist10k(batch_size=64, limit=640, eval_limit=128, val=128)
model student = convnet(width=8)
train student for 2 epochs
then train student for 2 epochs with optimizer sgd(lr=0.01, momentum=0.9), warmup 4 steps,
    ema 0.8, keep best
then train student for 2 epochs
then evaluate student
"""
SPE = 8


@pytest.fixture(scope="module")
def trainings(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("clauses")
    recipe = tmp / "r.kdr"
    recipe.write_text(RECIPE, encoding="utf-8")
    assert main(["check", str(recipe)]) == 0
    assert main(["run", str(recipe), "--run-dir", str(tmp / "run"), "--quiet"]) == 0
    report = json.loads((tmp / "run" / "report.json").read_text(encoding="utf-8"))
    return [s for s in report["stages"] if s["op"] == "train"]


def _lr(entry: dict) -> dict[int, float]:
    return {int(step): lr for step, lr in entry["train"]["lr_curve"]}


def test_the_recipes_multistep_cuts_the_lr_tenfold_after_epoch_one(trainings: list[dict]) -> None:
    lr = _lr(trainings[0])
    assert lr[0] == pytest.approx(0.005)  # `set optimizer`'s default adamw lr
    assert all(v == pytest.approx(0.005) for s, v in lr.items() if s < SPE)
    assert all(v == pytest.approx(0.0005) for s, v in lr.items() if s >= SPE)
    assert SPE in lr and 2 * SPE - 1 in lr  # every epoch boundary and the last step


def test_a_stages_optimizer_and_warmup_change_that_stage_only(trainings: list[dict]) -> None:
    own, after = _lr(trainings[1]), _lr(trainings[2])
    assert own[0] <= 0.01 / 4 + 1e-12  # warmup 4 steps: linear from (almost) 0 ...
    assert own[4] == pytest.approx(0.01)  # ... to sgd's lr at step 4
    assert own[SPE] == pytest.approx(0.001)  # then the recipe's multistep, on sgd's lr
    assert after[0] == pytest.approx(0.005)  # the next training is back on the recipe's adamw


def test_keep_best_keeps_the_best_validation_epoch(trainings: list[dict]) -> None:
    plain, kept = trainings[0]["train"], trainings[1]["train"]
    assert [e["epoch"] for e in plain["val_curve"]] == [1, 2]  # validated, nothing kept
    assert "best_epoch" not in plain
    curve = kept["val_curve"]
    best = max(curve, key=lambda e: e["accuracy"])  # ties: max() keeps the earliest
    assert kept["best_epoch"] == best["epoch"]


@pytest.mark.parametrize(
    ("clause", "code"),
    [
        ("train student for 1 epochs with warmup 500 steps", "error[KDR107]"),
        ("train student for 2 steps with warmup 1 epochs", "error[KDR107]"),
        ("train student for 1 epochs", "warning[KDR108]"),  # the recipe's warmup
        ("train student for 1 epochs with ema 0.999", "warning[KDR109]"),  # 0.999 ** 8 steps
    ],
)
def test_a_warmup_in_other_units_is_checked_with_the_datas_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clause: str, code: str
) -> None:
    """The compiler cannot convert 500 steps to epochs; the preflight can (8 steps an epoch)."""
    recipe = tmp_path / "r.kdr"
    setting = "set schedule = cosine(warmup_steps=40)\n" if "KDR108" in code else ""
    recipe.write_text(
        setting + "data = mnist10k(batch_size=64, limit=512, eval_limit=64)\n"
        "model student = convnet(width=8)\n" + clause + "\n",
        encoding="utf-8",
    )
    assert main(["check", str(recipe)]) == 0  # units differ: nothing the compiler can see
    status = main(["check", "--models", str(recipe)])
    out = capsys.readouterr()
    assert code in out.out + out.err
    assert status == (1 if "error" in code else 0)
    if "warning" in code:  # `kdr run` shows it too, before training (its runs are 1 epoch)
        assert main(["run", str(recipe), "--run-dir", str(tmp_path / "run"), "--quiet"]) == 0
        assert code in capsys.readouterr().err
