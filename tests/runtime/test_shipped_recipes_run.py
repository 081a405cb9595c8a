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


def test_the_oneliner_runs_with_a_pretrained_teacher_on_the_data_classes(
    tmp_path: Path, zoo_weights
) -> None:
    """`distill from resnet50 then prune 50% then quantize int8`, offline: the resnet50
    weights come from a local stand-in; its head is re-initialised for the 10 digits and
    finetuned (planned by the compiler), then distill, prune and int8 run as checked."""
    zoo_weights("resnet50")
    run_dir = tmp_path / "run"
    args = [str(ROOT / "recipes" / "oneliner.kdr"), "--student", "convnet(width=8)"]
    # resnet50 is the costly model here: two steps of finetuning, 64 images to evaluate
    args += ["--data", "mnist10k(batch_size=32, limit=64, eval_limit=64)"]
    assert main(["check", "--models", *args]) == 0
    assert main(["run", *args, "--run-dir", str(run_dir), "--quiet"]) == 0
    stages = _report(run_dir)
    teacher_in = next(s for s in stages if s["op"] == "input" and s["model"] == "resnet50")
    assert teacher_in["notes"] == [
        "classifier `fc` re-initialised for 10 classes (pretrained on 1000)"
    ]
    ops = [(s["op"], s["model"]) for s in stages if s["op"] != "input"]
    assert ops == [
        ("train", "resnet50"),
        ("distill", "student"),
        ("prune.channels", "student"),
        ("fuse.bn", "student"),
        ("quant.prepare", "student"),
        ("quant.calibrate", "student"),
        ("quant.convert", "student"),
    ]
    assert (run_dir / "report.md").exists() and (run_dir / "report.png").exists()


@pytest.mark.slow
def test_schedules_recipe_runs_its_schedules_ema_and_keep_best(tmp_path: Path) -> None:
    """recipes/schedules.kdr on small data (11 steps an epoch): each training keeps a best epoch
    or not as written, and the prune's recovery runs its own sgd with its 10-step warmup."""
    run_dir = tmp_path / "run"
    data = "mnist10k(batch_size=64, limit=832, eval_limit=128, val=128)"
    args = [str(ROOT / "recipes" / "schedules.kdr"), "--data", data]
    assert main(["run", *args, "--run-dir", str(run_dir), "--quiet"]) == 0
    trainings = [s["train"] for s in _report(run_dir) if s.get("train")]
    teacher, student, recovery = trainings
    for kept in (teacher, student):
        assert len(kept["val_curve"]) == 3 and 1 <= kept["best_epoch"] <= 3
    by_loss = min(student["val_curve"], key=lambda e: e["loss"])["epoch"]
    assert student["best_epoch"] == by_loss  # `keep best by loss`
    assert "best_epoch" not in recovery
    lr = {int(s): v for s, v in recovery["lr_curve"]}
    assert lr[0] <= 0.01 / 10 + 1e-12 and lr[10] == pytest.approx(0.01, rel=1e-3)
