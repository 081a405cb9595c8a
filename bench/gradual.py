"""What gradual pruning buys: a dense student pruned during training vs pruned at once.

A teacher (``convnet(width=64)``) and a dense student (``convnet(width=32)``, distilled from
it) are trained once (``bench/gradual/base.kdr``); every arm then starts from that student and
trains on with KD from the teacher for the same number of epochs (``bench/gradual/arms.kdr``):

- ``dense``: no pruning (the reference);
- ``weights_gradual``: ``prune 90% weights gradually over 3 epochs`` (cubic, once per epoch,
  one ranking across layers: the default for single weights);
- ``weights_gradual_fine``: the same, updating every 25 steps;
- ``weights_oneshot``: ``prune 90% weights`` at once, then the same training as recovery;
- ``channels_gradual`` / ``channels_oneshot``: 50% of the channels, gradually or at once;
- ``nm``: ``prune 2:4 weights`` with the same recovery.

Accuracy is top-1 on the 2,000 evaluation images of ``mnist10k``; sparsity is the share of
zero weights in the Conv/Linear layers, measured on the final model; params count the model
after channel surgery. One seed: the arms are paired (same start, same batches).

Usage: ``python bench/gradual.py [--quick] [--out DIR]`` (writes ``DIR/gradual.json``, or
``DIR/gradual_quick.json`` with ``--quick``: 2,000 training images, 2 epochs).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._results import add_out_option, check_exit, write_results  # noqa: E402
from kdr.cli import main as kdr_main  # noqa: E402

RECIPES = Path("bench/gradual")
RUNS = Path("runs/gradual")
ARMS = (
    "dense",
    "weights_gradual",
    "weights_gradual_fine",
    "weights_oneshot",
    "channels_gradual",
    "channels_oneshot",
    "nm",
)


def _kdr(argv: list[str]) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = kdr_main(argv)
    check_exit(code, f"kdr {' '.join(argv)}", err.getvalue())


def _run(recipe: str, run_dir: Path, sets: list[str]) -> dict[str, Any]:
    argv = ["run", str(RECIPES / recipe), "--run-dir", str(run_dir), "--fresh", "--quiet"]
    for s in sets:
        argv += ["--set", s]
    _kdr(argv)
    return dict(json.loads((run_dir / "report.json").read_text(encoding="utf-8")))


def _final(stages: list[dict[str, Any]], model: str) -> dict[str, Any]:
    return [s for s in stages if s["model"] == model][-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 images, 2 epochs")
    add_out_option(parser)
    args = parser.parse_args()
    os.chdir(ROOT)
    sets = ["limit=2000", "epochs=2"] if args.quick else []
    started = time.perf_counter()
    base = _run("base.kdr", RUNS / "base", sets)
    report = _run("arms.kdr", RUNS / "arms", sets)
    stages = report["stages"]
    dense = _final(stages, "dense")
    arms: dict[str, Any] = {}
    for arm in ARMS:
        last = _final(stages, arm)
        arms[arm] = {
            "accuracy": last["accuracy"],
            "accuracy_vs_dense": last["accuracy"] - dense["accuracy"],
            "sparsity": last["sparsity"],
            "params": last["params"],
            "params_vs_dense": last["params"] / dense["params"],
            "macs": last.get("macs"),
            "compressed_size_bytes": last.get("compressed_size_bytes"),
            "wall_s": sum(s.get("wall_s", 0.0) for s in stages if s["model"] == arm),
        }
        updates = [s for s in stages if s["model"] == arm and "gradual" in s]
        if updates:
            arms[arm]["updates"] = updates[-1]["gradual"]["updates"]
    teacher = _final(base["stages"], "teacher")
    result = {
        "benchmark": "gradual",
        "quick": args.quick,
        "setting": {"sets": sets, "recipes": ["bench/gradual/base.kdr", "bench/gradual/arms.kdr"]},
        "teacher_accuracy": teacher["accuracy"],
        "student_before": _final(base["stages"], "student")["accuracy"],
        "arms": arms,
        "acceptance": {
            "weights_gradual_sparsity_ge_0.899": arms["weights_gradual"]["sparsity"] >= 0.899,
            "weights_gradual_within_2_points": arms["weights_gradual"]["accuracy_vs_dense"]
            >= -0.02,
            "channels_gradual_params_le_0.30": arms["channels_gradual"]["params_vs_dense"] <= 0.30,
        },
        "wall_s": time.perf_counter() - started,
        "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "torch_threads": __import__("torch").get_num_threads(),
    }
    path = write_results("gradual", args.quick, result, args.out)
    print(json.dumps(result["acceptance"], indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
