"""Sparsity that holds: zeros written by `prune ... weights` survive every later training, and a
prune inside `repeat` removes its share of what remains (counted on the exported checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from kdr.cli import main
from runtime.engine import TrainConfig, fit
from runtime.metrics import sparsity as weight_sparsity
from runtime.sparsity import WeightMasks

HEAD = (
    "data = mnist10k(batch_size=32, limit=256, eval_limit=128)\n"
    "model student = convnet(width=8)\n"
    "train student for 10 steps\n"
)


def _exported_sparsity(path: Path) -> float:
    state = torch.load(path, weights_only=True)["state_dict"]
    weights = [t for k, t in state.items() if k.endswith("weight") and t.dim() in (2, 4)]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def _run(tmp_path: Path, body: str) -> tuple[Path, list[dict]]:
    recipe = tmp_path / "r.kdr"
    recipe.write_text(HEAD + body + 'then export student checkpoint "s.pt"\n', encoding="utf-8")
    run_dir = tmp_path / "run"
    assert main(["run", str(recipe), "--run-dir", str(run_dir), "--quiet"]) == 0
    stages = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))["stages"]
    return run_dir / "s.pt", [s for s in stages if s["model"] == "student"]


def test_zeros_survive_their_recovery_training(tmp_path: Path) -> None:
    exported, stages = _run(
        tmp_path, "then prune student 50% weights by l1 with lr 0.005 for 20 steps\n"
    )
    assert _exported_sparsity(exported) >= 0.50
    recovery = next(s for s in stages if s["op"] == "train" and s["pass_id"].startswith("002"))
    assert recovery["sparsity"] >= 0.50  # measured on the model after its recovery


def test_prunes_in_a_repeat_compound(tmp_path: Path) -> None:
    exported, stages = _run(
        tmp_path,
        "then repeat 2 {\n  prune student 30% weights\n  then train student for 10 steps\n}\n",
    )
    assert _exported_sparsity(exported) >= 0.51
    cuts = [s["sparsity"] for s in stages if s["op"] == "prune.weights"]
    assert cuts[0] >= 0.30 and cuts[1] >= 0.51


def test_masks_hold_against_momentum_and_weight_decay() -> None:
    """The engine itself: sgd with momentum and adamw with weight decay regrow nothing."""
    from runtime.data import build_data

    data = build_data("mnist10k", [], {"batch_size": 32, "limit": 128, "eval_limit": 32}, seed=0)
    for optimizer, kwargs in (("sgd", {"lr": 0.1, "momentum": 0.9}), ("adamw", {"lr": 0.01})):
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
        with torch.no_grad():
            model[1].weight[:, ::2] = 0
        before = weight_sparsity(model)
        cfg = TrainConfig(steps=8, optimizer=optimizer, optimizer_kwargs=kwargs, keep_zeros=True)
        fit(model, data, cfg)
        assert weight_sparsity(model) == before
        # ... and without keep_zeros they do regrow: the test can fail.
        loose = TrainConfig(steps=8, optimizer=optimizer, optimizer_kwargs=kwargs)
        fit(model, data, loose)
        assert weight_sparsity(model) < before
    assert not WeightMasks.of(nn.Linear(3, 3))  # a dense model has nothing to hold
