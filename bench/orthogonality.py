"""Is KD orthogonal to pruning, quantization, cheap convolutions and regularization?

Park, Yoo and Kwak (2020) claim that knowledge distillation's gain adds to the gains of the
other model-efficiency techniques. This benchmark measures it with kdr itself: every row of the
table is a pair of recipes in ``bench/orthogonality/`` (``ROW.kdr`` without KD, ``ROW_kd.kdr``
with KD; the two differ only in their KD clauses), run through ``kdr run`` for several seeds.

The setting: built-in ``mnist10k``, the student (``convnet(width=8)``) sees only the first
1,000 training images (``mnist10k(batch_size=64, limit=1000)``) for 480 steps (30 epochs), and
every row distils from the same teacher (``convnet(width=32)``, 3 epochs on all 8,000 training
images, trained once by ``bench/orthogonality/teachers.kdr`` and loaded with ``from "..."``).
Accuracy is top-1 on the 2,000 evaluation images; the KD gain is paired by seed (same seed,
same initial student) and reported as mean +- sample std, whatever its sign.

Usage::

    python bench/orthogonality.py [--quick] [--seeds N] [--rows a,b] [--out DIR]

``--quick``: one seed and four rows (plain, prune50, qat, all). The recipes load their teachers
from ``runs/orthogonality/teacher{1,2}.pt`` relative to the repository root (the driver runs
there); they are trained first when missing (``--retrain-teachers`` forces it). Writes
``DIR/orthogonality.json`` and ``.md`` (``orthogonality_quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench._results import add_out_option, check_exit, write_results  # noqa: E402
from kdr.cli import main as kdr_main  # noqa: E402

RECIPES = Path("bench/orthogonality")
RUNS = Path("runs/orthogonality")
TEACHERS = (RUNS / "teacher1.pt", RUNS / "teacher2.pt")


@dataclass
class Row:
    name: str
    label: str
    no_kd: str
    kd: str
    extra: dict[str, str] = field(default_factory=dict)  # more arms: label -> recipe stem
    quick: bool = False
    sets: list[str] = field(default_factory=list)  # --set values for every arm of the row


ROWS = [
    Row("plain", "plain student", "plain", "plain_kd", quick=True),
    Row(
        "prune50", "+ 50% channel pruning (recovery FT vs KD)", "prune50", "prune50_kd", quick=True
    ),
    Row(
        "prune50_long",
        "+ 50% channel pruning, 3x longer recovery (480 steps)",
        "prune50",
        "prune50_kd",
        sets=["recover_steps=480"],
    ),
    Row("ptq", "+ int8 static PTQ", "ptq", "ptq_kd"),
    Row(
        "qat",
        "+ int8 QAT (KD in float training and QAT)",
        "qat",
        "qat_kd",
        extra={"kd_float_only": "qat_kd_float_only"},
        quick=True,
    ),
    Row("dws", "+ depthwise-separable convs", "dws", "dws_kd"),
    Row("cutmix", "+ cutmix 1.0", "cutmix", "cutmix_kd"),
    Row("mixup", "+ mixup 0.2", "mixup", "mixup_kd"),
    Row("smooth", "+ label smoothing 0.1", "smooth", "smooth_kd"),
    Row("all", "+ all: dws, cutmix+LS, prune 50%, int8 QAT", "all", "all_kd", quick=True),
    Row(
        "all_long",
        "+ all, 3x longer pruning recovery (480 steps)",
        "all",
        "all_kd",
        sets=["recover_steps=480"],
    ),
    Row("ensemble", "plain, ensemble of 2 teachers", "plain", "ensemble_kd"),
]


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def kdr(argv: list[str]) -> None:
    """Run one ``kdr`` command in-process through its public entry point; fail loudly."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = kdr_main(argv)
    check_exit(code, f"kdr {' '.join(argv)}", err.getvalue())


def train_teachers(force: bool) -> dict[str, Any]:
    run_dir = RUNS / "teachers"
    report_path = run_dir / "report.json"
    if force or not all(p.is_file() for p in TEACHERS) or not report_path.is_file():
        print("training the teachers (bench/orthogonality/teachers.kdr) ...", flush=True)
        kdr(["run", str(RECIPES / "teachers.kdr"), "--run-dir", str(run_dir), "--quiet"])
    final = json.loads(report_path.read_text())["final"]
    return {name: final[name] for name in ("t1", "t2")}


class Runner:
    """Runs (recipe, seed) pairs once each and keeps the student's final figures."""

    def __init__(self) -> None:
        self.done: dict[tuple[str, int, tuple[str, ...]], dict[str, Any]] = {}

    def run(self, stem: str, seed: int, sets: list[str]) -> dict[str, Any]:
        key = (stem, seed, tuple(sets))
        if key not in self.done:
            suffix = "".join(f"_{s.replace('=', '')}" for s in sets)
            run_dir = RUNS / f"{stem}{suffix}" / f"seed{seed}"
            overrides = [a for s in sets for a in ("--set", s)]
            t0 = time.perf_counter()
            kdr(
                [
                    "run",
                    str(RECIPES / f"{stem}.kdr"),
                    "--run-dir",
                    str(run_dir),
                    "--set",
                    f"seed={seed}",
                    *overrides,
                    "--quiet",
                ]
            )
            wall = time.perf_counter() - t0
            student = json.loads((run_dir / "report.json").read_text())["final"]["student"]
            self.done[key] = {**student, "run_wall_s": wall}
            print(
                f"  {stem + suffix:<30} seed {seed}: {100 * student['accuracy']:.2f}%"
                f"  ({wall:.0f} s)",
                flush=True,
            )
        return self.done[key]


def measure_row(row: Row, seeds: list[int], runner: Runner, quick: bool) -> dict[str, Any]:
    print(f"{row.name}: {row.label}", flush=True)
    no_kd = [runner.run(row.no_kd, s, row.sets) for s in seeds]
    kd = [runner.run(row.kd, s, row.sets) for s in seeds]
    acc0 = [r["accuracy"] for r in no_kd]
    acc1 = [r["accuracy"] for r in kd]
    gains = [b - a for a, b in zip(acc0, acc1, strict=True)]
    runs = kd + no_kd
    out: dict[str, Any] = {
        "name": row.name,
        "label": row.label,
        "recipes": [f"{RECIPES / row.no_kd}.kdr", f"{RECIPES / row.kd}.kdr"],
        "seeds": seeds,
        "set": row.sets,
        "acc_no_kd": statistics.mean(acc0),
        "acc_kd": statistics.mean(acc1),
        "kd_gain": statistics.mean(gains),
        "acc_no_kd_std": _std(acc0),
        "acc_kd_std": _std(acc1),
        "kd_gain_std": _std(gains),
        "acc_no_kd_runs": acc0,
        "acc_kd_runs": acc1,
        # the two arms have the same architecture: figures of the KD arm, latency the median
        # over every run of the row (the machine is shared and timings are noisy)
        "params": kd[0]["params"],
        "macs": kd[0]["macs"],
        "size_bytes": kd[0]["size_bytes"],
        "latency_ms_b1": statistics.median(r["latency_ms_b1"] for r in runs),
        "wall_s": sum(r["run_wall_s"] for r in runs),
    }
    if not quick:
        for label, stem in row.extra.items():
            acc = [runner.run(stem, s, row.sets)["accuracy"] for s in seeds]
            g = [b - a for a, b in zip(acc0, acc, strict=True)]
            out[f"acc_{label}"] = statistics.mean(acc)
            out[f"acc_{label}_std"] = _std(acc)
            out[f"kd_gain_{label}"] = statistics.mean(g)
            out[f"kd_gain_{label}_std"] = _std(g)
    return out


def pct(mean: float, std: float, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{100 * mean:{sign}.2f} ± {100 * std:.2f}"


def markdown(result: dict[str, Any]) -> str:
    t = result["teachers"]
    lines = [
        f"# KD orthogonality{' (quick)' if result['quick'] else ''}",
        "",
        f"Student `convnet(width=8)`, {result['student_steps']} steps on the first "
        f"{result['train_images']:,} mnist10k training images; teacher `convnet(width=32)` "
        f"({100 * t['t1']:.2f}%; second teacher for the ensemble row {100 * t['t2']:.2f}%). "
        f"Seeds {result['seeds']}; torch threads {result['torch_threads']}; accuracy in % on "
        "the 2,000 evaluation images, mean ± std; "
        f"KD gain paired by seed. Generated by `bench/orthogonality.py` in "
        f"{result['wall_s'] / 60:.1f} min (2 shared CPU cores, load average "
        f"{result['load_average']}).",
        "",
        "| row | acc, no KD | acc, KD | KD gain (points) | params | size | latency b1 (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['label']} | {pct(r['acc_no_kd'], r['acc_no_kd_std'])} "
            f"| {pct(r['acc_kd'], r['acc_kd_std'])} "
            f"| **{pct(r['kd_gain'], r['kd_gain_std'], True)}** "
            f"| {r['params']:,} | {r['size_bytes'] / 1000:.1f} KB | {r['latency_ms_b1']:.3f} |"
        )
    extras = [r for r in result["rows"] if "acc_kd_float_only" in r]
    for r in extras:
        lines += [
            "",
            f"QAT with KD in the float training only (QAT itself without KD): "
            f"{pct(r['acc_kd_float_only'], r['acc_kd_float_only_std'])}%, gain "
            f"{pct(r['kd_gain_kd_float_only'], r['kd_gain_kd_float_only_std'], True)} points "
            f"over no KD at all.",
        ]
    lines += ["", "Recipes: `bench/orthogonality/ROW.kdr` (no KD) and `ROW_kd.kdr` (KD).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, four rows")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per arm (default 3)")
    parser.add_argument("--rows", help="comma-separated row names (default: all)")
    add_out_option(parser)
    parser.add_argument("--retrain-teachers", action="store_true")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: fastest for these "
        "tiny models, and far faster than 2 on a shared machine)",
    )
    args = parser.parse_args()
    out = Path(args.out).resolve() if args.out else None
    torch.set_num_threads(args.threads)
    os.chdir(ROOT)  # the recipes name their teacher files relative to the repository root
    seeds = [0] if args.quick else list(range(args.seeds))
    rows = [r for r in ROWS if r.quick] if args.quick else ROWS
    if args.rows:
        wanted = args.rows.split(",")
        unknown = sorted(set(wanted) - {r.name for r in ROWS})
        if unknown:
            parser.error(f"unknown rows {unknown}; known: {[r.name for r in ROWS]}")
        rows = [r for r in ROWS if r.name in wanted]
    start = time.perf_counter()
    teacher_reports = train_teachers(args.retrain_teachers)
    teachers = {name: r["accuracy"] for name, r in teacher_reports.items()}
    print(f"teachers: t1 {100 * teachers['t1']:.2f}%, t2 {100 * teachers['t2']:.2f}%")
    runner = Runner()
    result: dict[str, Any] = {
        "benchmark": "orthogonality",
        "quick": args.quick,
        "seeds": seeds,
        "teachers": teachers,
        "teacher_model": "convnet(width=32), 3 epochs on 8,000 images",
        "teacher_params": teacher_reports["t1"].get("params"),
        "student_model": "convnet(width=8)",
        "student_steps": 480,
        "train_images": 1000,
        "distill": {"temperature": 4, "alpha": 0.9},
        "torch_threads": args.threads,
        "rows": [],
    }
    for row in rows:
        result["rows"].append(measure_row(row, seeds, runner, args.quick))
        result["wall_s"] = time.perf_counter() - start
        result["load_average"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
        path = write_results("orthogonality", args.quick, result, out)
        write_results("orthogonality", args.quick, markdown(result), out, suffix=".md")
        r = result["rows"][-1]
        print(f"  -> KD gain {pct(r['kd_gain'], r['kd_gain_std'], True)} points", flush=True)
    print(f"wrote {path} and its .md ({result['wall_s'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
