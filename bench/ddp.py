"""Data-parallel training: ``kdr run --nproc-per-node 2`` (gloo, CPU) against one process.

The same recipe (``convnet(width=16)`` on ``mnist10k(batch_size=128, limit=4096)``, 2 epochs,
AdamW one-cycle) runs once in one process and once as 2 ranks under torchrun. The global
batch is the same (128): each rank trains on 64 images of every batch, so both runs take the
same number of optimizer steps with the same schedule. Reported: final top-1 accuracy on the
evaluation split (2,000 images), the wall time of the training pass (from ``report.json``) and
the whole command's wall time (process start-up, torchrun and rendezvous included).

On a machine with 2 shared cores and a model this small, communication and start-up dominate:
the figure to watch is the accuracy gap (acceptance: within 3 points), not a speed-up.

Usage: ``python bench/ddp.py [--quick] [--nproc 2] [--out DIR]`` (writes ``DIR/ddp.json``;
``--quick``: 1 epoch on 1,024 images, written to ``DIR/ddp_quick.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._results import add_out_option, timed_run, write_results  # noqa: E402

RECIPE = """\
recipe "ddp_bench"
set seed = 0
data = mnist10k(batch_size={batch}, limit={limit})
model student = convnet(width={width})
train student for {epochs} epochs
"""


def run(recipe: Path, run_dir: Path, nproc: int) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "kdr", "run", str(recipe), "--run-dir", str(run_dir), "--quiet"]
    if nproc > 1:
        cmd += ["--nproc-per-node", str(nproc)]
    wall = timed_run(cmd, env=env)  # a failing run stops the bench: its time is not a figure
    stage = json.loads((run_dir / "report.json").read_text())["stages"][-1]
    return {
        "nproc": nproc,
        "accuracy": stage["accuracy"],
        "train_wall_s": stage["wall_s"],
        "command_wall_s": round(wall, 2),
        "steps": stage["train"]["steps"],
        "samples_per_s": round(stage["train"]["samples_per_s"], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 epoch on 1,024 images")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--limit", type=int, default=4096)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2)
    add_out_option(ap)
    args = ap.parse_args()
    if args.quick:
        args.limit, args.epochs = min(args.limit, 1024), 1
    with tempfile.TemporaryDirectory() as tmp:
        recipe = Path(tmp) / "ddp.kdr"
        recipe.write_text(
            RECIPE.format(batch=args.batch, limit=args.limit, width=args.width, epochs=args.epochs)
        )
        single = run(recipe, Path(tmp) / "single", 1)
        multi = run(recipe, Path(tmp) / "ddp", args.nproc)
    result = {
        "quick": args.quick,
        "recipe": RECIPE.format(
            batch=args.batch, limit=args.limit, width=args.width, epochs=args.epochs
        ),
        "backend": "gloo",
        "global_batch": args.batch,
        "per_rank_batch": args.batch // args.nproc,
        "single_process": single,
        "ddp": multi,
        "accuracy_gap_points": round(100 * abs(multi["accuracy"] - single["accuracy"]), 2),  # type: ignore[operator]
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    path = write_results("ddp", args.quick, result, args.out)
    print(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
