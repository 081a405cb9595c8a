"""Benchmark kdr's ``prune.channels`` against Torch-Pruning at 50% channels, l1 importance.

Same settings on both sides: ``MetaPruner`` with ``GroupMagnitudeImportance(p=1)``, local
(per-group) ratio 0.5, the final fc ignored (kdr never prunes classifier outputs), no
``round_to``. Params, MACs (one Conv/Linear counter from shapes, applied to both models) and CPU
latency are compared; latency repeats of the two models are interleaved in one run and medians
taken, because the machine is shared and noisy. Pruning time is the pass body (kdr: trace both
modes + importance + surgery; Torch-Pruning: ``MetaPruner(...)`` construction + ``step()``).

    python bench/prune_vs_torch_pruning.py [--quick] [--out DIR]

Writes ``DIR/prune.json`` (``prune_quick.json`` with ``--quick``; default DIR ``bench/results/``).

Needs ``pip install --no-deps torch-pruning`` (bench-only).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._results import add_out_option, write_results
from runtime.passes.channels import count_macs, count_params, prune_model

MODELS = ("resnet18", "resnet50", "mobilenet_v2")


def prune_tp(model: nn.Module, x: torch.Tensor) -> nn.Module:
    import torch_pruning as tp

    classifier = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    pruner = tp.pruner.MetaPruner(
        model,
        x,
        importance=tp.importance.GroupMagnitudeImportance(p=1),
        pruning_ratio=0.5,
        global_pruning=False,
        ignored_layers=[classifier],
    )
    pruner.step()
    return model


def prune_kdr(model: nn.Module, x: torch.Tensor) -> nn.Module:
    prune_model(model, x, 0.5, criterion="l1", ranking="local")
    return model


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


@torch.no_grad()
def interleaved_latency(
    a: nn.Module, b: nn.Module, x: torch.Tensor, repeats: int
) -> tuple[float, float]:
    """Median seconds per forward of ``a`` and ``b``, timed alternately (a, b, b, a, ...)."""
    a.eval(), b.eval()
    for _ in range(3):
        a(x), b(x)
    ta: list[float] = []
    tb: list[float] = []
    for i in range(repeats):
        order = [(a, ta), (b, tb)] if i % 2 == 0 else [(b, tb), (a, ta)]
        for model, sink in order:
            start = time.perf_counter()
            model(x)
            sink.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb)


def bench_model(name: str, size: int, repeats: int, prune_repeats: int) -> dict[str, Any]:
    torch.manual_seed(0)
    base = torchvision.models.get_model(name, weights=None).eval()
    x = torch.randn(1, 3, size, size)
    kdr_times, tp_times = [], []
    kdr_model = tp_model = base
    for _ in range(prune_repeats):  # interleaved too: pruning time is as noisy as latency
        kdr_model, t = timed(prune_kdr, copy.deepcopy(base), x)
        kdr_times.append(t)
        tp_model, t = timed(prune_tp, copy.deepcopy(base), x)
        tp_times.append(t)
    with torch.no_grad():
        assert kdr_model(x).shape == tp_model(x).shape == base(x).shape
    lat_kdr, lat_tp = interleaved_latency(kdr_model, tp_model, x, repeats)
    row = {
        "base_params": count_params(base),
        "kdr_params": count_params(kdr_model),
        "tp_params": count_params(tp_model),
        "base_macs": count_macs(base, x),
        "kdr_macs": count_macs(kdr_model, x),
        "tp_macs": count_macs(tp_model, x),
        "kdr_latency_ms": lat_kdr * 1e3,
        "tp_latency_ms": lat_tp * 1e3,
        "latency_ratio_kdr_over_tp": lat_kdr / lat_tp,
        "kdr_prune_s": statistics.median(kdr_times),
        "tp_prune_s": statistics.median(tp_times),
    }
    row["prune_time_ratio"] = row["kdr_prune_s"] / row["tp_prune_s"]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller input, fewer repeats")
    add_out_option(parser)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args(argv)
    size, repeats, prune_repeats = (128, 15, 1) if args.quick else (224, 41, 3)
    import torch_pruning as tp

    models = {name: bench_model(name, size, repeats, prune_repeats) for name in args.models}
    result = {
        "quick": args.quick,
        "settings": {
            "ratio": 0.5,
            "importance": "l1 (GroupMagnitudeImportance p=1 / kdr l1), local, fc ignored",
            "input": [1, 3, size, size],
            "latency_repeats": repeats,
            "prune_repeats": prune_repeats,
            "macs": "Conv/Linear multiply-accumulates from shapes (runtime.passes.budget)",
            "torch": torch.__version__,
            "torch_pruning": getattr(tp, "__version__", "?"),
            "threads": torch.get_num_threads(),
        },
        "models": models,
    }
    path = write_results("prune", args.quick, result, args.out)
    header = (
        f"{'model':<14}{'params k/tp':>12}{'macs k/tp':>11}{'latency k/tp':>14}{'prune t k/tp':>14}"
    )
    print(header)
    for name, r in models.items():
        params, macs = r["kdr_params"] / r["tp_params"], r["kdr_macs"] / r["tp_macs"]
        print(
            f"{name:<14}{params:>12.4f}{macs:>11.4f}"
            f"{r['latency_ratio_kdr_over_tp']:>14.3f}{r['prune_time_ratio']:>14.3f}"
        )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
