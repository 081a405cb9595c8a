"""Prune a zoo of timm architectures with kdr and with Torch-Pruning, side by side, at 50%.

Per model (``bench/zoo/models.py``: random weights, 10 classes, the smallest input of 64, 96,
128 or 224 that the model accepts) and per tool: params and MACs of the pruned model over the
dense one, whether its forward keeps the output shape, whether a training step runs, and for
kdr whether the record replays onto a freshly built model (``apply_record`` then a strict
``load_state_dict``, same outputs); kdr's reasons for the channels it left alone (or for
declining), and the pruning wall time. Settings are those of ``bench/prune_vs_torch_pruning.py``
(l1, local ratio 0.5, the classifier kept).

Each (model, tool) runs in its own forked child with a timeout, so a hang or a crash costs one
cell. The children use one thread each: the machine is shared and the figures are ratios, not
speeds (prune times are given to spot pathologies, not to rank the tools).

    python bench/prune_zoo.py [--quick] [--models NAME ...] [--timeout S] [--out DIR]

Writes ``DIR/prune_zoo.json`` (``prune_zoo_quick.json`` with ``--quick``); then
``python -m bench.zoo.table`` regenerates the table of ``docs/pruning.md`` from it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
import warnings
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import timm
import torch

from bench._results import add_out_option, write_results
from bench.zoo.measure import RATIO, SIZES, measure, short
from bench.zoo.models import FAMILY, QUICK, ZOO
from bench.zoo.summary import summarize

THREADS = 1
TIMEOUT_S = 120.0
#: what a child that never reported is recorded as
UNSEEN = {"status": "error", "error": "the child process reported nothing"}


def _child(name: str, tool: str, size: int | None, conn: Connection) -> None:
    """The forked child: measure, sending the row after every step."""
    torch.set_num_threads(THREADS)
    warnings.filterwarnings("ignore")
    try:
        measure(name, tool, conn.send, size)
    except Exception as exc:  # a step outside the per-step catches (the build, a count)
        conn.send({"exception": short(exc)})
    finally:
        conn.close()


def run_cell(name: str, tool: str, size: int | None, timeout: float) -> dict[str, Any]:
    """One (model, tool) in a forked child; its last report, marked if it timed out or died.

    Fork, not spawn: the parent never runs a torch op (so no thread pool is forked), and the
    child starts with torch and timm already imported."""
    ctx = mp.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(name, tool, size, writer), daemon=True)
    start = time.perf_counter()
    child.start()
    writer.close()
    row: dict[str, Any] = {}
    timed_out = False
    while True:
        left = start + timeout - time.perf_counter()
        if left <= 0:
            timed_out = True
            break
        if reader.poll(min(left, 1.0)):
            try:
                row.update(reader.recv())  # each report is the row so far, or an exception
            except EOFError:
                break
        elif not child.is_alive() and not reader.poll(0):
            break
    if child.is_alive():
        child.kill()
    child.join()
    reader.close()
    if "status" not in row and "exception" in row:
        row.update(status="error", error=row["exception"])
    row = row or dict(UNSEEN)
    if timed_out:
        row["timeout"] = True
        if "status" not in row:
            row.update(status="error", error=f"timeout after {timeout:.0f}s")
    elif child.exitcode not in (0, None) and "train_step" not in row:
        row["crash"] = f"child exit code {child.exitcode}"
        if "status" not in row:
            row.update(status="error", error=row["crash"])
    row["seconds"] = time.perf_counter() - start
    return row


SHARED = ("input", "img_size", "why_larger_input", "base_params", "base_macs")


def run_model(name: str, timeout: float) -> dict[str, Any]:
    """kdr first (it finds the input size), then Torch-Pruning on the same size."""
    kdr = run_cell(name, "kdr", None, timeout)
    tp = run_cell(name, "tp", kdr.get("input"), timeout)
    row: dict[str, Any] = {"name": name, "family": FAMILY.get(name, "?")}
    row.update({k: kdr.get(k, tp.get(k)) for k in SHARED})
    for cell in (kdr, tp):
        for key in (*SHARED, "tool"):
            cell.pop(key, None)
    row.update(kdr=kdr, tp=tp)
    return row


def _line(row: dict[str, Any]) -> str:
    def cell(c: dict[str, Any]) -> str:
        if c.get("status") != "pruned":
            return f"{c.get('status')}: {str(c.get('error', ''))[:60]}"
        fwd = "ok" if c.get("forward") else "BROKEN"
        return f"{c.get('params_ratio', 0):.3f} {fwd} train={c.get('train_step')}"

    return (
        f"{row['name']:<30} {row.get('input')!s:>4}  kdr {cell(row['kdr'])} | tp {cell(row['tp'])}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{len(QUICK)} models only")
    parser.add_argument("--models", nargs="*", default=None, help="default: the whole zoo")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per cell")
    add_out_option(parser)
    args = parser.parse_args(argv)
    names = args.models or (list(QUICK) if args.quick else [n for n, _ in ZOO])
    import torch_pruning as tp

    known = set(timm.list_models())
    missing = [n for n in names if n not in known]
    if missing:
        parser.error(f"not timm models: {', '.join(missing)}")
    load_start, start = os.getloadavg(), time.perf_counter()
    rows = []
    for name in names:
        rows.append(run_model(name, args.timeout))
        print(_line(rows[-1]), flush=True)
    result = {
        "quick": args.quick,
        "settings": {
            "ratio": RATIO,
            "importance": "l1 (GroupMagnitudeImportance p=1 / kdr l1), local, classifier kept",
            "sizes_tried": list(SIZES),
            "weights": "random (timm pretrained=False), num_classes=10",
            "macs": "Conv/Linear multiply-accumulates from shapes (runtime.passes.channels)",
            "torch": torch.__version__,
            "timm": timm.__version__,
            "torch_pruning": getattr(tp, "__version__", "?"),
            "threads_per_child": THREADS,
            "timeout_s": args.timeout,
            "cpus": os.cpu_count(),
            "loadavg_start": list(load_start),
            "loadavg_end": list(os.getloadavg()),
            "wall_s": time.perf_counter() - start,
        },
        "summary": summarize(rows),
        "models": rows,
    }
    path = write_results("prune_zoo", args.quick, result, args.out)
    s = result["summary"]
    for tool in ("kdr", "tp"):
        print(f"{tool}: {s[tool]}")
    for r in s["top_kdr_reasons"]:
        print(f"  {r['models']:>3} models  {r['reason']}")
    print(f"wrote {path} in {result['settings']['wall_s']:.0f}s")
    print("docs/pruning.md: python -m bench.zoo.table rewrites the zoo table from it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
