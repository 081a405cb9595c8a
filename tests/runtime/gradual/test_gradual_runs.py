"""Gradual pruning and N:M sparsity through `kdr run`, counted on the exported checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from kdr.cli import main

ROOT = Path(__file__).resolve().parents[3]
HEAD = (
    "set seed = 0\n"
    "data = mnist10k(batch_size=32, limit={limit}, eval_limit=256)\n"
    "model teacher = convnet(width=16)\n"
    "model student = convnet(width=8)\n"
    "train teacher for 20 steps\n"
)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, weights_only=True)["state_dict"]
    return {k: t for k, t in state.items() if k.endswith("weight") and t.dim() in (2, 4)}


def _sparsity(path: Path) -> float:
    weights = _weights(path).values()
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def _run(tmp_path: Path, body: str, limit: int = 512, models: str = "") -> list[dict[str, Any]]:
    recipe = tmp_path / "r.kdr"
    head = HEAD.format(limit=limit).replace("train teacher", models + "train teacher")
    recipe.write_text(head + body, encoding="utf-8")
    run_dir = tmp_path / "run"
    assert main(["run", str(recipe), "--run-dir", str(run_dir), "--quiet"]) == 0
    return list(json.loads((run_dir / "report.json").read_text(encoding="utf-8"))["stages"])


def test_gradual_weights_with_kd_reach_their_target(tmp_path: Path) -> None:
    stages = _run(
        tmp_path,
        "then prune student 80% weights gradually over 30 steps from 20% every 10 steps "
        "linear with distill from teacher\n"
        'then export student checkpoint "s.pt"\n',
    )
    assert _sparsity(tmp_path / "run" / "s.pt") >= 0.799
    stage = next(s for s in stages if s["op"] == "prune.weights.gradual")
    updates = stage["gradual"]["updates"]
    assert [u["step"] for u in updates] == [0, 10, 20]
    assert [round(u["level"], 3) for u in updates] == [0.2, 0.5, 0.8]
    # each cut is measured on the model, and the zeros hold between the cuts
    assert [round(u["sparsity"], 2) for u in updates] == [0.2, 0.5, 0.8]
    assert stage["sparsity"] >= 0.799 and stage["train"]["steps"] == 30


def test_gradual_channels_end_where_one_cut_would(tmp_path: Path) -> None:
    stages = _run(
        tmp_path,
        "then prune student 50% channels gradually over 24 steps every 8 steps\n"
        "then prune twin 50% channels with lr 0.001 for 2 steps\n",
        models="model twin = convnet(width=8)\n",
    )
    gradual = next(s for s in stages if s["op"] == "prune.channels.gradual")
    dense = next(s for s in stages if s["model"] == "student" and s["op"] == "input")
    oneshot = next(s for s in stages if s["op"] == "prune.channels")
    params = [u["params"] for u in gradual["gradual"]["updates"]]
    assert params[0] == dense["params"] and params == sorted(params, reverse=True)
    assert params[-1] == gradual["params"] == oneshot["params"]  # the cuts add up to one cut
    assert gradual["train"]["steps"] == 24


def test_two_four_sparsity_holds_through_recovery(tmp_path: Path) -> None:
    _run(
        tmp_path,
        "then prune student 2:4 weights with lr 0.005 for 20 steps\n"
        'then export student checkpoint "s.pt"\n',
    )
    checked = 0
    for name, w in _weights(tmp_path / "run" / "s.pt").items():
        rows = w.reshape(w.shape[0], -1)
        if rows.shape[1] % 4:
            continue  # layers whose rows do not split into groups of 4 are left dense
        zeros = (rows.reshape(rows.shape[0], -1, 4) == 0).sum(-1)
        assert bool((zeros >= 2).all()), name
        checked += 1
    assert checked >= 2


def _wait_for_file(path: Path, proc: subprocess.Popen[bytes], timeout: float = 300.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if path.exists():
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


@pytest.mark.slow
def test_sigkill_inside_a_gradual_stage_resumes_to_the_same_model(tmp_path: Path) -> None:
    body = (
        "then prune student 90% weights by movement gradually over 3 epochs every 20 steps "
        "with distill from teacher\n"
        'then export student checkpoint "s.pt"\n'
    )
    recipe = tmp_path / "r.kdr"
    recipe.write_text(HEAD.format(limit=2048) + body, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "kdr", "run", str(recipe)]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--run-dir", str(killed), "--quiet"], env=env, cwd=tmp_path)
    partial = killed / "checkpoints" / "001-prune.weights.gradual-student.partial.pt"
    _wait_for_file(partial.with_name(partial.name + ".sha256"), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads((killed / "state.json").read_text())
    assert state["finished"] == ["000-train-teacher"], "the kill came too late to test a resume"
    resumed = subprocess.run(
        [*cmd, "--run-dir", str(killed), "--resume"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at step" in resumed.stdout + resumed.stderr
    assert not partial.exists()  # the pass finished: its inner checkpoint is gone
    whole = subprocess.run(
        [*cmd, "--run-dir", str(tmp_path / "whole"), "--quiet"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert whole.returncode == 0, whole.stderr
    a = json.loads((killed / "report.json").read_text())["stages"]
    b = json.loads((tmp_path / "whole" / "report.json").read_text())["stages"]
    assert [(s["accuracy"], s["sparsity"]) for s in a] == [
        (s["accuracy"], s["sparsity"]) for s in b
    ]
    assert a[-2]["sparsity"] >= 0.899
    for (k, x), (_, y) in zip(
        _weights(killed / "s.pt").items(),
        _weights(tmp_path / "whole" / "s.pt").items(),
        strict=True,
    ):
        assert torch.equal(x, y), k
