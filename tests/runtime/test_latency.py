"""Latency you can trust: interleaved repeats, min/median/spread, noisy flag, fixed threads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from runtime.latency import (
    DEFAULT_THREADS,
    LATENCY_KEYS,
    MAX_ROUNDS,
    MIN_ROUNDS,
    NOISY_FLOOR_MS,
    NOISY_SPREAD,
    NOISY_WAIT,
    LatencyStats,
    latency_fields,
    time_batches,
)
from runtime.models import build_model

ROOT = Path(__file__).resolve().parents[2]


def _small() -> nn.Module:
    return build_model("convnet", [], {"width": 8}, in_channels=1, num_classes=10)


def test_stats_median_min_and_spread() -> None:
    s = LatencyStats.of([2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 11.0])
    assert (s.min, s.median, s.rounds) == (1.0, 1.0, 11)
    assert s.p90 == pytest.approx(2.0)  # rank 9 of 0..10
    assert s.spread == pytest.approx(1.0)
    assert s.noisy


def test_noisy_needs_a_large_relative_and_absolute_tail() -> None:
    steady = LatencyStats.of([10.0] * 9 + [10.0 * (1 + NOISY_SPREAD / 2)])
    assert not steady.noisy
    tail = 1 + 2 * NOISY_SPREAD
    assert LatencyStats.of([10.0] * 5 + [10.0 * tail] * 5).noisy
    # timer jitter on a tiny model: a large ratio but a tail below the floor
    tiny = LatencyStats.of([0.01] * 5 + [0.01 + NOISY_FLOOR_MS / 2] * 5)
    assert tiny.spread > NOISY_SPREAD and not tiny.noisy


def test_waiting_for_a_core_is_noisy_even_when_every_run_waits_alike() -> None:
    alike = [20.0] * 10
    assert not LatencyStats.of(alike, [19.0] * 10).noisy
    waited = LatencyStats.of(alike, [20.0 / (1 + 2 * NOISY_WAIT)] * 10)
    assert waited.spread == 0 and waited.noisy
    # more threads than one: CPU time above wall time is not waiting
    assert not LatencyStats.of(alike, [40.0] * 10).noisy


def test_fields_are_the_declared_keys_and_consistent() -> None:
    fields = latency_fields(_small(), (1, 28, 28))
    assert tuple(fields) == LATENCY_KEYS
    for b in (1, 32):
        assert 0 < fields[f"latency_ms_b{b}_min"] <= fields[f"latency_ms_b{b}"]
        assert fields[f"latency_spread_b{b}"] >= 0
        assert 0 < fields[f"latency_ms_b{b}_cpu"] <= 1.5 * fields[f"latency_ms_b{b}"]
    assert fields["latency_ms_b1"] < fields["latency_ms_b32"]
    assert fields["threads"] == 1 and isinstance(fields["noisy"], bool)
    assert fields["load_avg"] is None or fields["load_avg"] >= 0
    assert MIN_ROUNDS <= fields["latency_rounds"] <= MAX_ROUNDS


def test_thread_setting_is_fixed_while_timing_and_restored() -> None:
    seen: list[int] = []

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return x * 2

    before = torch.get_num_threads()
    time_batches(Spy(), (3,), (1, 32), repeats=2, threads=1)
    assert set(seen) == {1}
    assert torch.get_num_threads() == before


def test_rounds_scale_with_the_model_cost() -> None:
    class Slow(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            time.sleep(0.02)
            return x

    assert time_batches(nn.Identity(), (3,), (1, 32))[1].rounds == MAX_ROUNDS
    assert time_batches(Slow(), (3,), (1, 32))[1].rounds == MIN_ROUNDS
    assert time_batches(Slow(), (3,), (1,), repeats=2)[1].rounds == 2


def test_a_small_model_is_measured_well_under_a_second() -> None:
    model = build_model("convnet", [], {"width": 32}, in_channels=1, num_classes=10)
    latency_fields(model, (1, 28, 28))  # first call: lazy initialisations of torch
    # CPU time, not wall time: on a shared machine (load 5) the wall time of the same work
    # doubles, while the CPU time the measurement costs does not.
    start = time.process_time()
    latency_fields(model, (1, 28, 28))
    assert time.process_time() - start < 0.6


CHILD = """
import json
from runtime.latency import latency_fields
from runtime.models import build_model
model = build_model("convnet", [], {"width": 16}, in_channels=1, num_classes=10)
print(json.dumps([latency_fields(model, (1, 28, 28)) for _ in range(2)]))
"""


def test_a_busy_core_gives_steady_medians_or_a_noisy_flag() -> None:
    """The issue's acceptance test: the same model measured twice on core 0 while a
    CPU-bound process spins on core 0 too."""
    taskset = shutil.which("taskset")
    if taskset is None:
        pytest.skip("taskset is not available to pin both processes to one core")
    hog = subprocess.Popen([taskset, "-c", "0", sys.executable, "-c", "while True: pass"])
    try:
        out = subprocess.run(
            [taskset, "-c", "0", sys.executable, "-c", CHILD],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    finally:
        hog.kill()
        hog.wait()
    first, second = json.loads(out)
    for b in (1, 32):
        a, c = first[f"latency_ms_b{b}"], second[f"latency_ms_b{b}"]
        steady = abs(a - c) / min(a, c) < 0.25
        assert steady or first["noisy"] or second["noisy"], (b, first, second)


def test_the_tutorial_quotes_the_noisy_thresholds() -> None:
    text = " ".join((ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8").split())
    assert f"spread is above {100 * NOISY_SPREAD:.0f}%" in text
    assert f"more than {NOISY_FLOOR_MS} ms above the minimum" in text
    assert f"more than {100 * NOISY_WAIT:.0f}% above its CPU time" in text
    assert "measured with one intra-op thread" in text and DEFAULT_THREADS == 1
    assert (ROOT / "docs" / "img" / "quickstart_report.png").stat().st_size > 10_000
