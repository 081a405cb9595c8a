"""Compile-time benchmark: parse and compile speed per stage, cold ``kdr check`` against torch.

    python bench/compile.py [--quick] [--out DIR]

Writes ``DIR/compile.json`` (``compile_quick.json`` with ``--quick``; default DIR
``bench/results/``) and prints pass/fail for each target:
cold check < 30% of a torch import; 10,000-stage parse within 1.5x per stage of 1,000 and
under 2 s; quickstart warm compile < 10 ms; 1,000-stage compile < 1 s; 10,000-stage compile
within 1.5x per stage of 1,000.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._results import BenchFailure, add_out_option, timed_run, write_results  # noqa: E402
from compiler.driver import compile_source  # noqa: E402
from recipe_lang.parser import parse  # noqa: E402

HEAD = """recipe "big"
param epochs = 2
set seed = 0
set optimizer = sgd(lr=0.05, momentum=0.9, weight_decay=5e-4)
data = mnist10k(batch_size=128)
model teacher = resnet18()
model student = convnet(width=32)
model helper = convnet(width=24)
train teacher for $epochs epochs with label_smoothing 0.1
then train helper for 1 epoch
then distill student from teacher temperature 4 alpha 0.9 for $epochs epochs with cutmix 1.0
then snapshot student as dense
"""

#: A realistic cycle of stages (8 stages): KD, pruning with KD recovery, evaluation.
CYCLE = [
    "then prune student 5% channels by l1 with distill from teacher for 1 epoch",
    "then evaluate student",
    "then distill student from dense temperature 4 alpha 0.7 for 1 epoch with mixup 0.2",
    "then prune helper 3% channels by l2 global except fc with distill from teacher for 1 epoch",
    "then train helper for 1 epoch with distill from teacher, label_smoothing 0.1",
    "then prune student 2% weights by l1 in layer1.* with distill from dense for 1 epoch",
    "then evaluate helper",
    "then distill student from ensemble(teacher, helper) for 1 epoch",
]
HEAD_STAGES = 4


def big_recipe(stages: int) -> str:
    body = [CYCLE[i % len(CYCLE)] for i in range(stages - HEAD_STAGES)]
    return HEAD + "\n".join(body) + "\n"


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def cold_runs(n: int) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    check = [sys.executable, "-m", "kdr", "check", "recipes/quickstart.kdr"]
    torch = [sys.executable, "-c", "import torch"]
    c_times, t_times = [], []
    for _ in range(n):  # interleaved, so that machine noise hits both alike
        for cmd, sink in ((check, c_times), (torch, t_times)):
            sink.append(timed_run(cmd, cwd=ROOT, env=env))  # a failing command stops the bench
    return statistics.median(c_times), statistics.median(t_times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (under a minute)")
    add_out_option(ap)
    args = ap.parse_args()
    repeat = 2 if args.quick else 5

    sizes = (100, 1000, 10000)
    parse_ms: dict[str, float] = {}
    compile_ms: dict[str, float] = {}
    compile_s: dict[int, float] = {}
    for n in sizes:
        src = big_recipe(n)
        result = compile_source(src, "big.kdr")
        errors = [d for d in result.diagnostics if d.is_error]
        if errors or result.plan is None:
            raise BenchFailure(f"the {n}-stage recipe does not compile: {errors[:3]}")
        parse_s = best_of(lambda src=src: parse(src, "big.kdr"), repeat)
        comp_s = best_of(lambda src=src: compile_source(src, "big.kdr"), repeat)
        parse_ms[str(n)] = round(parse_s * 1000 * 1000 / n, 3)
        compile_ms[str(n)] = round(comp_s * 1000 * 1000 / n, 3)
        compile_s[n] = comp_s

    quickstart = (ROOT / "recipes" / "quickstart.kdr").read_text(encoding="utf-8")
    for _ in range(20):
        compile_source(quickstart, "recipes/quickstart.kdr")
    warm = []
    for _ in range(50 if args.quick else 200):
        t0 = time.perf_counter()
        compile_source(quickstart, "recipes/quickstart.kdr")
        warm.append(time.perf_counter() - t0)
    warm_ms = statistics.median(warm) * 1000

    check_s, torch_s = cold_runs(5)
    ratio = check_s / torch_s if torch_s else float("inf")
    results = {
        "ms_per_1k_stages": parse_ms,
        "compile_ms_per_1k_stages": compile_ms,
        "check_cold_s": round(check_s, 4),
        "torch_import_s": round(torch_s, 4),
        "check_over_torch_ratio": round(ratio, 4),
        "quickstart_compile_warm_ms": round(warm_ms, 3),
        "compile_1000_stages_s": round(compile_s[1000], 4),
        "compile_10000_stages_s": round(compile_s[10000], 4),
        "quick": args.quick,
        "python": sys.version.split()[0],
    }
    targets = [
        ("cold check < 30% of torch import", ratio < 0.30, f"{ratio:.1%}"),
        (
            "10k-stage parse within 1.5x per stage of 1k",
            parse_ms["10000"] <= 1.5 * parse_ms["1000"],
            f"{parse_ms['10000'] / parse_ms['1000']:.2f}x",
        ),
        (
            "10k-stage parse under 2 s",
            parse_ms["10000"] * 10 / 1000 < 2,
            f"{parse_ms['10000'] * 10 / 1000:.2f} s",
        ),
        ("quickstart warm compile < 10 ms", warm_ms < 10, f"{warm_ms:.2f} ms"),
        ("1,000-stage compile < 1 s", compile_s[1000] < 1, f"{compile_s[1000]:.3f} s"),
        (
            "10k-stage compile within 1.5x per stage of 1k",
            compile_ms["10000"] <= 1.5 * compile_ms["1000"],
            f"{compile_ms['10000'] / compile_ms['1000']:.2f}x",
        ),
    ]
    results["targets"] = {name: ok for name, ok, _ in targets}
    path = write_results("compile", args.quick, results, args.out)
    print(json.dumps({k: v for k, v in results.items() if k != "targets"}, indent=2))
    for name, ok, shown in targets:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {shown}")
    print(f"wrote {path}")
    return 0 if all(ok for _, ok, _ in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
