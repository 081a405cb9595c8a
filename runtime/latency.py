"""CPU latency that can be trusted: warm-up, interleaved repeats, min/median/spread, load.

One forward pass is timed at a time, after a warm-up, in rounds that interleave the batch sizes
(batch 1, batch 32, batch 1, ...), so a burst of load on the machine slows every batch size
alike instead of one of them. Within a round each batch size runs twice back to back and the
second call is timed: otherwise batch 1 would always be timed with its cache just emptied by
batch 32 (about 25% slower on a small CNN). The number of rounds is scaled by the warm-up's
timing so that a small model is measured in a fraction of a second (``DEFAULT_BUDGET_S``) and
a large one still gets ``MIN_ROUNDS``.

Every model is timed with the same number of intra-op threads (``threads``, 1 by default; the
caller's setting is restored afterwards): the figures compare stages with one another, and a
single thread is not exposed to the multi-millisecond stalls that OpenMP workers suffer when
another process holds one of the cores.

Each batch size reports its median wall time (the stable ``latency_ms_b*`` figure), its
minimum, a spread, ``(p90 - min) / min`` (how much slower the slow tail is than the best run),
and the median CPU time of the same calls (``process_time``). A figure is *noisy* when

- its spread exceeds ``NOISY_SPREAD`` (0.5: a tenth of the runs took more than 1.5x the
  fastest one) and the tail is more than ``NOISY_FLOOR_MS`` above the minimum (so that timer
  jitter on a 50-microsecond model does not count), or
- its median wall time exceeds its median CPU time by more than ``NOISY_WAIT`` (0.25): the
  process waited for a core during a quarter of the time. This catches a machine so busy that
  every run is slowed alike, which the spread cannot see. (With more than one thread the CPU
  time exceeds the wall time and this test never fires.)

The 1-minute load average at the end of the measurement is recorded next to it.

>>> from torch import nn
>>> stats = time_batches(nn.Linear(4, 2), (4,), (1, 32), repeats=3)
>>> sorted(stats), stats[1].rounds
([1, 32], 3)
"""

from __future__ import annotations

import copy
import gc
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

#: A figure whose ``(p90 - min) / min`` exceeds this is flagged noisy.
NOISY_SPREAD = 0.5
#: ...unless its tail is within this many milliseconds of its minimum (timer jitter).
NOISY_FLOOR_MS = 0.05
#: A figure whose median wall time exceeds its median CPU time by this fraction is noisy.
NOISY_WAIT = 0.25
#: The intra-op threads every model is timed with.
DEFAULT_THREADS = 1
#: Seconds of timed rounds for a small model; a large one gets ``MIN_ROUNDS`` whatever it costs.
DEFAULT_BUDGET_S = 0.15
MIN_ROUNDS = 5
MAX_ROUNDS = 30


def is_noisy(low: float, p90: float, median: float, cpu: float) -> bool:
    """The rule for the ``noisy`` flag (see the module's docstring)."""
    spread = low > 0 and (p90 - low) / low > NOISY_SPREAD and p90 - low > NOISY_FLOOR_MS
    return spread or (cpu > 0 and median > (1 + NOISY_WAIT) * cpu)


@dataclass(frozen=True)
class LatencyStats:
    """Timings of one batch size, in milliseconds."""

    median: float
    min: float
    p90: float
    rounds: int
    #: The median CPU time of the same calls.
    cpu_median: float = 0.0

    @property
    def spread(self) -> float:
        """``(p90 - min) / min``: 0 when every run took the same time."""
        return (self.p90 - self.min) / self.min if self.min > 0 else 0.0

    @property
    def noisy(self) -> bool:
        return is_noisy(self.min, self.p90, self.median, self.cpu_median)

    @classmethod
    def of(cls, times: Sequence[float], cpu_times: Sequence[float] = ()) -> LatencyStats:
        ordered = sorted(times)
        return cls(
            median=statistics.median(ordered),
            min=ordered[0],
            p90=_quantile(ordered, 0.9),
            rounds=len(ordered),
            cpu_median=statistics.median(cpu_times) if cpu_times else 0.0,
        )


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@contextmanager
def _quiet_timing(threads: int) -> Iterator[None]:
    """A fixed number of intra-op threads and no garbage collection while timing."""
    previous = torch.get_num_threads()
    gc_was_enabled = gc.isenabled()
    torch.set_num_threads(threads)
    gc.disable()
    try:
        yield
    finally:
        if gc_was_enabled:
            gc.enable()
        torch.set_num_threads(previous)


def _timed(model: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """Wall and CPU milliseconds of one call."""
    cpu, start = time.process_time(), time.perf_counter()
    model(x)
    wall = time.perf_counter() - start
    return wall * 1000.0, (time.process_time() - cpu) * 1000.0


def time_batches(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batches: Sequence[int] = (1, 32),
    *,
    warmup: int = 2,
    repeats: int | None = None,
    threads: int = DEFAULT_THREADS,
    budget_s: float = DEFAULT_BUDGET_S,
) -> dict[int, LatencyStats]:
    """Time one forward pass per batch size in ``batches``, interleaved, on the CPU.

    ``input_shape`` is one sample's shape (a leading batch dimension of a 4-d shape is
    dropped). ``repeats`` fixes the number of rounds; None scales it to ``budget_s`` from the
    last warm-up timing, within ``[MIN_ROUNDS, MAX_ROUNDS]``.
    """
    shape = tuple(input_shape)[-3:] if len(input_shape) == 4 else tuple(input_shape)
    cpu_model = model
    if next((t.device.type != "cpu" for t in model.parameters()), False):
        cpu_model = copy.deepcopy(model).cpu()
    inputs = {b: torch.randn(b, *shape) for b in batches}
    was_training = cpu_model.training
    cpu_model.eval()
    times: dict[int, list[tuple[float, float]]] = {b: [] for b in batches}
    try:
        with _quiet_timing(threads), torch.inference_mode():
            cost = 0.0
            for _ in range(max(warmup, 1)):
                cost = sum(_timed(cpu_model, inputs[b])[0] for b in batches)
            if repeats is None:  # a round runs every batch size twice
                rounds = int(budget_s * 1000.0 / max(2 * cost, 1e-6))
                rounds = max(MIN_ROUNDS, min(MAX_ROUNDS, rounds))
            else:
                rounds = max(repeats, 1)
            for _ in range(rounds):
                for b in batches:
                    cpu_model(inputs[b])  # this batch size's data and buffers back in cache
                    times[b].append(_timed(cpu_model, inputs[b]))
    finally:
        cpu_model.train(was_training)
    return {b: LatencyStats.of([w for w, _ in t], [c for _, c in t]) for b, t in times.items()}


def load_average() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


#: The batch sizes of the report, and the fields each of them gets (``{}``: the batch size).
BATCHES = (1, 32)
PER_BATCH: tuple[tuple[str, Callable[[LatencyStats], float]], ...] = (
    ("latency_ms_b{}", lambda s: round(s.median, 4)),
    ("latency_ms_b{}_min", lambda s: round(s.min, 4)),
    ("latency_spread_b{}", lambda s: round(s.spread, 3)),
    ("latency_ms_b{}_cpu", lambda s: round(s.cpu_median, 4)),
)
#: Every field ``latency_fields`` returns, in order (the report's latency columns).
LATENCY_KEYS = (
    *(field.format(b) for field, _ in PER_BATCH for b in BATCHES),
    "latency_rounds",
    "threads",
    "load_avg",
    "noisy",
)


def latency_fields(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    warmup: int = 2,
    repeats: int | None = None,
    threads: int = DEFAULT_THREADS,
) -> dict[str, Any]:
    """The report's latency figures, ``LATENCY_KEYS`` (see the module's docstring)."""
    stats = time_batches(
        model, input_shape, BATCHES, warmup=warmup, repeats=repeats, threads=threads
    )
    out: dict[str, Any] = {
        field.format(b): value(stats[b]) for field, value in PER_BATCH for b in BATCHES
    }
    out["latency_rounds"] = stats[BATCHES[0]].rounds
    out["threads"] = threads
    out["load_avg"] = load_average()
    out["noisy"] = any(s.noisy for s in stats.values())
    return out
