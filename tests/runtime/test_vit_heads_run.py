"""The shipped ``recipes/vit_heads.kdr`` end to end on small data: a timm ViT student distilled
from a convnet, half its attention heads pruned with KD recovery, int8 dynamic, ONNX export that
runs in onnxruntime with int8 kernels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdr.cli import main

pytest.importorskip("timm")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[2]
DATA = "mnist10k(batch_size=64, image_size=32, limit=256, eval_limit=256)"


@pytest.mark.slow
def test_vit_heads_recipe_runs_as_checked(tmp_path: Path) -> None:
    import numpy as np

    args = [str(ROOT / "recipes" / "vit_heads.kdr"), "--data", DATA, "--set", "epochs=1"]
    assert main(["check", "--models", *args]) == 0
    run_dir = tmp_path / "run"
    assert main(["run", *args, "--run-dir", str(run_dir), "--quiet"]) == 0
    stages = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))["stages"]
    by_op = {s["op"]: s for s in stages if s["model"] == "student"}
    heads = by_op["prune.heads"]["info"]
    assert (heads["heads_before"], heads["heads_after"]) == (16, 8)  # 4 blocks, 4 -> 2 heads
    dense = next(s for s in stages if s["model"] == "student" and s["op"] == "distill")
    assert by_op["prune.heads"]["params"] < dense["params"]
    assert by_op["quant.convert"]["size_bytes"] < 0.5 * by_op["prune.heads"]["size_bytes"]
    path = run_dir / "out" / "vit_heads.onnx"
    assert "MatMulInteger" in {n.op_type for n in onnx.load(str(path)).graph.node}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"input": np.zeros((3, 1, 32, 32), np.float32)})
    assert logits.shape == (3, 10)
