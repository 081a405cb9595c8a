"""``kdr run --nproc-per-node 2``: DDP on CPU (gloo) matches one process with the same global
batch, rank 0 alone writes the run directory, and a resume works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kdr.cli import main
from runtime import distributed

ROOT = Path(__file__).resolve().parents[2]
RECIPE = """\
recipe "ddp"
set seed = 0
data = mnist10k(batch_size=32, limit=2048, eval_limit=512)
model student = convnet(width=8)
train student for 2 epochs
then prune student 25% by l1
"""


def test_the_torchrun_command_keeps_the_arguments() -> None:
    argv = ["run", "r.kdr", "--run-dir", "d", "--nproc-per-node", "2"]
    cmd = distributed.torchrun_command(argv, 2)
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--nproc-per-node=2"]
    assert "--standalone" in cmd and cmd[-len(argv) - 2 :] == ["-m", "kdr", *argv]
    multi = distributed.torchrun_command(argv, 4, "2", "node0:29400")
    assert "--nnodes=2" in multi and "--rdzv-endpoint=node0:29400" in multi
    assert "--standalone" not in multi


def test_not_relaunched_under_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    assert distributed.wants_launch(2)
    assert not distributed.wants_launch(1)
    for key, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(key, value)
    assert not distributed.wants_launch(2)


@pytest.mark.slow
def test_two_ranks_match_one_process(tmp_path: Path) -> None:
    recipe = tmp_path / "r.kdr"
    recipe.write_text(RECIPE)
    assert main(["run", str(recipe), "--run-dir", str(tmp_path / "one"), "--quiet"]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "kdr", "run", str(recipe), "--run-dir", str(tmp_path / "two")]
    done = subprocess.run(
        [*cmd, "--nproc-per-node", "2", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    one = json.loads((tmp_path / "one" / "report.json").read_text())["stages"]
    two = json.loads((tmp_path / "two" / "report.json").read_text())["stages"]
    assert [s["pass_id"] for s in one] == [s["pass_id"] for s in two]
    train_one, train_two = one[1], two[1]
    assert train_one["accuracy"] > 0.5, train_one
    assert abs(train_one["accuracy"] - train_two["accuracy"]) <= 0.03, (train_one, train_two)
    assert train_two["world_size"] == 2
    assert train_two["train"]["steps"] == train_one["train"]["steps"]  # same global batch
    # the pruned model is the same structure on both (the graph pass agreed across ranks)
    assert two[2]["params"] == one[2]["params"]
    ckpts = sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir())
    assert ckpts == [
        "000-train-student.pt",
        "000-train-student.pt.sha256",
        "001-prune.channels-student.pt",
        "001-prune.channels-student.pt.sha256",
    ]
    # every rank loads the finished run from the run directory and nothing is redone
    before = (tmp_path / "two" / "checkpoints" / "000-train-student.pt").read_bytes()
    resumed = subprocess.run(
        [*cmd, "--nproc-per-node", "2", "--quiet", "--resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "two" / "checkpoints" / "000-train-student.pt").read_bytes() == before
