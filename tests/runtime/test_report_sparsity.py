"""A 2:4 prune with its recovery, run through `kdr run`: the pattern holds in the exported
checkpoint, and every stage's report entry measures it on the model (sparsity, zipped size,
N:M conformance), snapshots included.

The plan is compiled from a `prune 50% weights` recipe and its prune given the pattern instead
(the plan is the contract between the compiler and the runtime; the hash is recomputed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from compiler.ops import PruneWeightsParams
from compiler.plan import Plan
from kdr.cli import main

RECIPE = (
    "data = mnist10k(batch_size=32, limit=256, eval_limit=128)\n"
    "model student = convnet(width=8)\n"
    "train student for 10 steps\n"
    "then prune student 50% weights with lr 0.005 for 20 steps\n"
    "then snapshot student as pruned\n"
    'then export student checkpoint "s.pt"\n'
)


def _nm_plan(tmp_path: Path) -> Path:
    recipe, compiled = tmp_path / "r.kdr", tmp_path / "dense.json"
    recipe.write_text(RECIPE, encoding="utf-8")
    assert main(["compile", str(recipe), "-o", str(compiled)]) == 0
    plan = Plan.from_json(compiled.read_text(encoding="utf-8"))
    (cut,) = [p for p in plan.passes if p.op == "prune.weights"]
    cut.params = PruneWeightsParams.model_validate({"pattern": {"n": 2, "m": 4}})
    plan.hash = plan.compute_hash()
    out = tmp_path / "nm.json"
    out.write_text(plan.to_json(), encoding="utf-8")
    return out


def test_a_2_4_prune_holds_through_recovery_and_is_reported(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert main(["run", str(_nm_plan(tmp_path)), "--run-dir", str(run_dir), "--quiet"]) == 0
    state = torch.load(run_dir / "s.pt", weights_only=True)["state_dict"]
    checked = 0
    for key, w in state.items():
        if key.endswith("weight") and w.dim() in (2, 4):
            rows = w.reshape(w.shape[0], -1)
            if rows.shape[1] % 4 == 0:  # the first conv (1 x 3 x 3 = 9 a row) is skipped
                groups = rows.reshape(rows.shape[0], -1, 4)
                assert bool(((groups == 0).sum(-1) >= 2).all()), key
                checked += 1
    assert checked == 3  # two 3x3 convs (72 and 144 a row) and the linear head (32)

    stages: list[dict[str, Any]] = json.loads((run_dir / "report.json").read_text())["stages"]
    by_op = {(s["op"], s["model"]): s for s in stages}
    cut, recovery = by_op[("prune.weights", "student")], by_op[("train", "student")]
    snap, first = by_op[("snapshot", "pruned")], by_op[("input", "student")]
    assert cut["info"]["pattern"] == "2:4" and list(cut["info"]["layers_skipped"]) == ["0.0"]
    for entry in (cut, recovery, snap):
        assert entry["nm_pattern"] == "2:4" and entry["nm_conformance"] == 1.0
        # 50% of every layer but the 72-entry first conv, measured on the model
        assert 0.45 < entry["sparsity"] < 0.5
        assert entry["compressed_size_bytes"] < entry["dense_size_bytes"] == entry["size_bytes"]
    assert first["nm_pattern"] is None and first["sparsity"] == 0.0
    assert cut["compressed_size_bytes"] < 0.8 * first["compressed_size_bytes"]
    md = (run_dir / "report.md").read_text()
    assert "| 2:4 100% |" in md
