"""``kdr run`` with ``prune 50% heads``: a user transformer on the built-in digits data is
pruned, recovers, exports to ONNX, and its checkpoint rebuilds from the recorded history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kdr.cli import main
from runtime.checkpoint import load_checkpoint
from runtime.data import build_data
from runtime.modelstore import Lineage, rebuild
from runtime.passes.heads import PrunableMultiheadAttention

MODEL = """
import torch
from torch import nn


class TinyViT(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.patch = nn.Conv2d(in_channels, 32, 7, stride=7)
        layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2)
        return self.fc(self.encoder(t).mean(1))


def build(num_classes: int = 10, in_channels: int = 1) -> TinyViT:
    return TinyViT(num_classes, in_channels)
"""
RECIPE = """\
recipe "heads"
set seed = 0
set optimizer = adamw(lr=0.01)
data = mnist10k(batch_size=64, limit=256, eval_limit=128)
model student = "kdr_heads_tinyvit:build"()
train student for 2 steps
then prune student 50% heads with lr 0.01 for 2 steps
then export student onnx "out/s.onnx"
"""


@pytest.mark.slow  # a whole run with latency measurements: about 10 s on a loaded machine
def test_run_prunes_heads_recovers_exports_and_rebuilds(tmp_path: Path) -> None:
    (tmp_path / "kdr_heads_tinyvit.py").write_text(MODEL)
    recipe = tmp_path / "heads.kdr"
    recipe.write_text(RECIPE)
    run = tmp_path / "run"
    assert main(["run", str(recipe), "--run-dir", str(run), "--quiet"]) == 0
    assert (run / "out" / "s.onnx").stat().st_size > 0
    plan = json.loads((run / "plan.json").read_text())
    assert [p["op"] for p in plan["passes"]] == ["train", "prune.heads", "train", "export"]
    ckpt = load_checkpoint(run / "checkpoints" / "002-train-student.pt")
    lineage = Lineage.from_plain(ckpt["model"])
    assert lineage.history[0]["op"] == "prune.heads"
    kept = lineage.history[0]["record"]["heads"]
    assert sorted(kept) == ["encoder.layers.0.self_attn", "encoder.layers.1.self_attn"]
    assert [len(k) for k in kept.values()] == [2, 2]
    data = build_data("mnist10k", [], {"batch_size": 8, "limit": 16, "eval_limit": 8})
    model = rebuild(lineage, data, ckpt["state_dict"]).eval()
    attn = model.encoder.layers[0].self_attn
    assert isinstance(attn, PrunableMultiheadAttention) and attn.num_heads == 2
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
