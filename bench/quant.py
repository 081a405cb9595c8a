"""int8 against fp32 on this CPU: speedup at batch 1 and 32, and top-1 agreement.

    python bench/quant.py [--quick] [--out DIR]

Agreement on random weights is meaningless (near-ties decide the argmax), so every model is
first trained briefly on the packaged digits (``runtime/assets/mnist10k.npz``: first 8000
train, last 2000 evaluate). resnet18 trains on them padded to 3x32x32; its agreement is
measured there, and its *speed* on 3x224x224 inputs (the ImageNet shape it is built for; the
convolutions do not care what the weights learned). Timing interleaves fp32 and int8 repeats
in one run, so background load hits both alike, and reports the median of per-repeat ratios.
Everything goes through kdr's passes (``quant.prepare`` -> ``quant.calibrate`` ->
``quant.convert``), so the figures are the ones a recipe gets.

Writes ``DIR/quant.json`` (``quant_quick.json`` with ``--quick``; default DIR
``bench/results/``): ``{name: {speedup_b1, speedup_b32, top1_agreement, ...}}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import runtime.passes.quant  # noqa: F401  (registers the quant.* passes)
from bench._results import add_out_option, write_results
from runtime.passes.base import PassContext, run_pass
from runtime.passes.quant_backends import int8_modules


def digits(channels: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    with np.load(Path(__file__).resolve().parents[1] / "runtime/assets/mnist10k.npz") as d:
        x = torch.from_numpy(d["images"]).float().div(255).sub(0.1307).div(0.3081)
        y = torch.from_numpy(d["labels"]).long()
    x = x.unsqueeze(1)
    if size != 28:
        x = nn.functional.pad(x, [(size - 28) // 2] * 4, value=float(x.min()))
    return x.expand(-1, channels, -1, -1).contiguous(), y


def train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> float:
    """A few hundred Adam steps; returns held-out accuracy."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, 8000, (64,))
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        return (net(x[8000:]).argmax(1) == y[8000:]).float().mean().item()


def quantize(net: nn.Module, x: torch.Tensor, y: torch.Tensor, **params: str) -> nn.Module:
    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, 8000, 64):
            yield x[i : i + 64], y[i : i + 64]

    ctx = PassContext(example_inputs=x[8000:8008], batches=batches)
    model = run_pass("quant.prepare", copy.deepcopy(net), params, ctx).module
    model = run_pass("quant.calibrate", model, {"batches": 16}, ctx).module
    return run_pass("quant.convert", model, {}, ctx).module


@torch.inference_mode()
def speedup(fp32: nn.Module, int8: nn.Module, x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median over interleaved repeats of fp32 time / int8 time."""
    fp32(x), int8(x)  # warm-up: weight packing, allocator
    ratios, tf, tq = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fp32(x)
        t1 = time.perf_counter()
        int8(x)
        t2 = time.perf_counter()
        tf.append(t1 - t0)
        tq.append(t2 - t1)
        ratios.append((t1 - t0) / (t2 - t1))
    return {
        "speedup": statistics.median(ratios),
        "fp32_ms": 1e3 * statistics.median(tf),
        "int8_ms": 1e3 * statistics.median(tq),
    }


@torch.inference_mode()
def agreement(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    return (a(x).argmax(1) == b(x).argmax(1)).float().mean().item()


def small_convnet() -> nn.Sequential:
    def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(1, 16, 2),
        *block(16, 32, 2),
        *block(32, 32, 1),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def resnet18() -> nn.Module:
    return torchvision.models.resnet18(weights=None, num_classes=10)


def mlp() -> nn.Sequential:
    """Linear-heavy: where dynamic int8 (weights int8, activations quantized on the fly) pays."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 2048),
        nn.ReLU(),
        nn.Linear(2048, 2048),
        nn.ReLU(),
        nn.Linear(2048, 10),
    )


Case = tuple[str, Callable[[], nn.Module], int, int, float, list[dict[str, str]], int]


def run(quick: bool) -> dict[str, dict[str, object]]:
    steps = 120 if quick else 200
    reps = {1: 10 if quick else 30, 32: 3 if quick else 7}
    static = [
        {"mode": "static", "granularity": "per_channel"},
        {"mode": "static", "granularity": "per_tensor"},
    ]
    # name, builder, input channels, trained size, lr, configs, timing size
    dynamic = [
        {"mode": "dynamic", "granularity": "per_channel"},
        {"mode": "dynamic", "granularity": "per_tensor"},
    ]
    cases: list[Case] = [
        ("resnet18", resnet18, 3, 32, 1e-3, static, 224),
        ("small_convnet", small_convnet, 1, 28, 5e-3, static, 28),
        ("mlp", mlp, 1, 28, 1e-3, dynamic, 28),
    ]
    results: dict[str, dict[str, object]] = {}
    for name, build, channels, size, lr, configs, timing_size in cases:
        x, y = digits(channels, size)
        net = build()
        t = time.perf_counter()
        acc = train(net, x, y, steps, lr)
        print(f"{name}: trained {steps} steps in {time.perf_counter() - t:.0f}s, top-1 {acc:.3f}")
        for params in configs:
            q = quantize(net, x, y, **params)
            key = f"{name}_{params['mode']}_{params['granularity']}"
            entry: dict[str, object] = {
                "top1_agreement": agreement(net, q, x[8000:]),
                "fp32_top1": acc,
                "int8_top1": _top1(q, x, y),
                "int8_modules": sum(int8_modules(q).values()),
                "timing_input": [channels, timing_size, timing_size],
                "agreement_input": [channels, size, size],
                "engine": torch.backends.quantized.engine,
            }
            for b in (1, 32):
                xb = torch.randn(b, channels, timing_size, timing_size)
                s = speedup(net, q, xb, reps[b])
                entry[f"speedup_b{b}"] = s["speedup"]
                entry[f"fp32_ms_b{b}"] = s["fp32_ms"]
                entry[f"int8_ms_b{b}"] = s["int8_ms"]
            results[key] = entry
            print(f"  {key}: {json.dumps({k: _round(v) for k, v in entry.items()})}")
    return results


@torch.inference_mode()
def _top1(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return (model(x[8000:]).argmax(1) == y[8000:]).float().mean().item()


def _round(v: object) -> object:
    return round(v, 4) if isinstance(v, float) else v


def table(results: dict[str, dict[str, object]]) -> str:
    head = (
        f"{'model / int8 config':34} {'input':>9} {'b1 ms fp32/int8':>17} {'x b1':>6}"
        f" {'b32 ms fp32/int8':>19} {'x b32':>6} {'agree':>6}"
    )
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        shape = "x".join(str(d) for d in r["timing_input"])  # type: ignore[attr-defined]
        b1 = f"{r['fp32_ms_b1']:>8.1f}/{r['int8_ms_b1']:<8.1f} {r['speedup_b1']:>6.2f}"
        b32 = f"{r['fp32_ms_b32']:>9.1f}/{r['int8_ms_b32']:<9.1f} {r['speedup_b32']:>6.2f}"
        lines.append(f"{name:34} {shape:>9} {b1} {b32} {r['top1_agreement']:>6.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer training steps and repeats")
    add_out_option(parser)
    parser.add_argument(
        "--threads", type=int, default=0, help="intra-op threads (0: torch's default)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()}")
    results = run(args.quick)
    text = json.dumps(results, indent=2, sort_keys=True) + "\n"
    path = write_results("quant", args.quick, text, args.out)
    print()
    print(table(results))
    print(f"\nwrote {path}; load now {os.getloadavg()}")


if __name__ == "__main__":
    main()
