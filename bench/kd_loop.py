"""Training-loop overhead: kdr's ``fit`` against a minimal hand-written PyTorch loop.

Same model (convnet width 16; teacher convnet width 32 for distillation), same in-memory
mnist10k tensors, same batch (128) and optimizer (AdamW, lr 5e-3); each run is two epochs
(``--quick``: of the first 1,024 training images, else of all 8,000). kdr runs with its
defaults (one-cycle schedule stepped per batch, loss recording, seeding), the hand loop with
none of that. Runs are interleaved (hand, kdr, hand, kdr, ...) and the per-repeat ratios of
samples/s are summarised by their median. Per-process CPU-time ratios are reported beside
them: on a shared machine (high load average) they are the steadier measure of overhead.

Reported ratios (kdr / hand, higher is better):

- ``train_throughput_ratio``: plain supervised training (target >= 0.95);
- ``distill_throughput_ratio``: distillation with kdr's defaults, which precompute the
  teacher's logits once when the inputs are deterministic (target >= 0.90);
- ``distill_uncached_throughput_ratio``: distillation with ``cache_logits=False``, i.e. the
  teacher runs on every batch exactly as in the hand loop: the pure loop-overhead figure;
- ``train_sched_ema_throughput_ratio`` / ``distill_sched_ema_throughput_ratio``: the same
  with a warmup (4 steps), a ``multistep(milestones=[1], gamma=0.1)`` schedule, an EMA of
  the weights (decay 0.999) and ``clip_grad 1.0`` on both sides (the hand loop with
  torch's SequentialLR(LambdaLR, MultiStepLR), AveragedModel and clip_grad_norm_), kdr also
  recording its lr curve (targets >= 0.95 and >= 0.90).

Usage: ``python bench/kd_loop.py [--quick] [--out DIR]`` (writes ``DIR/kd_loop.json``,
``DIR/kd_loop_quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._results import add_out_option, write_results
from runtime.data import DataBundle, build_data
from runtime.engine import DistillConfig, TrainConfig, fit
from runtime.models import build_model

LR = 5e-3
WARMUP, EMA, CLIP = 4, 0.999, 1.0  #: the ``*_sched_ema`` cases' warmup steps, decay, clip


def hand_loop(
    model: nn.Module,
    data: DataBundle,
    steps: int,
    teacher: nn.Module | None = None,
    temperature: float = 4.0,
    alpha: float = 0.9,
    extras: bool = False,
) -> None:
    """The minimal loop a practitioner would write; ``extras``: with a warmup and multistep
    schedule, gradient clipping and an EMA of the weights (the result)."""
    assert data.train_tensors is not None
    xs, ys = data.train_tensors
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=5e-4)
    sched = ema = None
    if extras:
        spe = data.steps_per_epoch
        warm = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min(1.0, (t + 1) / WARMUP))
        # the milestone at the second epoch's start, counted after the warmup
        decay = torch.optim.lr_scheduler.MultiStepLR(opt, [spe - WARMUP], 0.1)
        sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, decay], [WARMUP])
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(EMA), use_buffers=True)
    model.train()
    if teacher is not None:
        teacher.eval()
    gen = torch.Generator().manual_seed(0)
    done = 0
    while done < steps:
        perm = torch.randperm(len(xs), generator=gen)
        for start in range(0, len(xs), data.batch_size):
            idx = perm[start : start + data.batch_size]
            x, y = xs[idx], ys[idx]
            out = model(x)
            if teacher is None:
                loss = F.cross_entropy(out, y)
            else:
                with torch.inference_mode():
                    t = teacher(x)
                soft = F.kl_div(
                    F.log_softmax(out / temperature, 1),
                    F.log_softmax(t / temperature, 1),
                    reduction="batchmean",
                    log_target=True,
                )
                loss = alpha * temperature**2 * soft + (1 - alpha) * F.cross_entropy(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if extras:
                nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            opt.step()
            if ema is not None and sched is not None:
                ema.update_parameters(model)
                sched.step()
            done += 1
            if done >= steps:
                break
    if ema is not None:
        model.load_state_dict(ema.module.state_dict())


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall and process-CPU seconds (CPU time is the steadier figure on a shared machine)."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    add_out_option(parser)
    args = parser.parse_args()
    # Two epochs per run: kdr caches the teacher's logits from two epochs on.
    # --quick runs on the first 1,024 training images only.
    limit, repeats = (1024, 3) if args.quick else (None, 5)
    data = build_data("mnist10k", [], {"batch_size": 128, "limit": limit}, seed=0)
    steps = 2 * data.steps_per_epoch
    torch.manual_seed(0)
    student0 = build_model("convnet", [], {"width": 16}, in_channels=1, num_classes=10)
    teacher = build_model("convnet", [], {"width": 32}, in_channels=1, num_classes=10).eval()
    samples = steps * data.batch_size

    def kdr(distill: DistillConfig | None, extras: bool = False) -> Callable[[], object]:
        cfg = TrainConfig(steps=steps, optimizer="adamw", lr=LR, distill=distill)
        if extras:  # the same schedule, in steps: the milestone is the second epoch's start
            cfg.schedule, cfg.schedule_kwargs = "multistep", {"milestones": [steps // 2]}
            cfg.warmup_steps, cfg.ema, cfg.clip_grad = WARMUP, EMA, CLIP
        return lambda: fit(copy.deepcopy(student0), data, cfg)

    def hand(t: nn.Module | None, extras: bool = False) -> Callable[[], object]:
        return lambda: hand_loop(copy.deepcopy(student0), data, steps, t, extras=extras)

    cases = {
        "train": (hand(None), kdr(None)),
        "distill": (hand(teacher), kdr(DistillConfig(teacher))),
        "distill_uncached": (hand(teacher), kdr(DistillConfig(teacher, cache_logits=False))),
        "train_sched_ema": (hand(None, True), kdr(None, True)),
        "distill_sched_ema": (hand(teacher, True), kdr(DistillConfig(teacher), True)),
    }
    for hand_fn, kdr_fn in cases.values():  # warm up allocators and kernels
        hand_fn(), kdr_fn()
    ratios: dict[str, list[float]] = {k: [] for k in cases}
    cpu_ratios: dict[str, list[float]] = {k: [] for k in cases}
    rates: dict[str, dict[str, list[float]]] = {k: {"hand": [], "kdr": []} for k in cases}
    for _ in range(repeats):
        for name, (hand_fn, kdr_fn) in cases.items():
            (t_hand, c_hand), (t_kdr, c_kdr) = timed(hand_fn), timed(kdr_fn)
            ratios[name].append(t_hand / t_kdr)
            cpu_ratios[name].append(c_hand / c_kdr)
            rates[name]["hand"].append(samples / t_hand)
            rates[name]["kdr"].append(samples / t_kdr)
    result = {
        "benchmark": "kd_loop",
        "quick": args.quick,
        "steps": steps,
        "train_images": data.train_size,
        "repeats": repeats,
        "batch_size": data.batch_size,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "train_throughput_ratio": statistics.median(ratios["train"]),
        "distill_throughput_ratio": statistics.median(ratios["distill"]),
        "distill_uncached_throughput_ratio": statistics.median(ratios["distill_uncached"]),
        "train_sched_ema_throughput_ratio": statistics.median(ratios["train_sched_ema"]),
        "distill_sched_ema_throughput_ratio": statistics.median(ratios["distill_sched_ema"]),
        "ratios": ratios,
        "cpu_time_ratios_median": {k: statistics.median(v) for k, v in cpu_ratios.items()},
        "load_average_1m": _load(),
        "samples_per_s_median": {
            k: {who: statistics.median(v) for who, v in r.items()} for k, r in rates.items()
        },
        "targets": {
            "train_throughput_ratio": 0.95,
            "distill_throughput_ratio": 0.90,
            "train_sched_ema_throughput_ratio": 0.95,
            "distill_sched_ema_throughput_ratio": 0.90,
        },
    }
    print(f"{'loop':<18}{'hand samples/s':>16}{'kdr samples/s':>16}{'ratio':>8}{'cpu ratio':>10}")
    for name in cases:
        med = result["samples_per_s_median"][name]
        ratio, cpu_ratio = statistics.median(ratios[name]), statistics.median(cpu_ratios[name])
        print(f"{name:<18}{med['hand']:>16.0f}{med['kdr']:>16.0f}{ratio:>8.3f}{cpu_ratio:>10.3f}")
    print(f"(1-minute load average {_load()} on {os.cpu_count()} CPUs)")
    print(f"wrote {write_results('kd_loop', args.quick, result, args.out)}")


if __name__ == "__main__":
    main()
