"""Training progress: a rich bar on a terminal, plain per-epoch lines otherwise, a steady ETA.

Where stderr is a terminal, :class:`TrainProgress` draws a rich progress bar; where it is not
(a log file, a pipe, CI), it prints one plain line per epoch (no more often than every
:data:`MIN_GAP_S` seconds, and at least every :data:`HEARTBEAT_S` seconds during a long epoch),
without ANSI codes::

    epoch 1/3  step 40/120  loss 0.4123  elapsed 0:12  eta 0:24

The ETA comes from :class:`EtaEstimator`: the running mean of the time per step (the first,
slow step left out), then a moving average with a long memory, so a slow first step (warm-up,
a teacher cache) or a noisy step does not make it jump.

>>> eta = EtaEstimator(total=10)
>>> for step in range(1, 6):
...     eta.update(step, now=float(step))
>>> eta.remaining()
5.0
>>> format_duration(3725.0)
'1:02:05'
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

#: The plain-lines mode prints at least this often during a long epoch ...
HEARTBEAT_S = 30.0
#: ... and at most this often when epochs are short (the last step always prints).
MIN_GAP_S = 2.0


def format_duration(seconds: float) -> str:
    """``M:SS``, or ``H:MM:SS`` from an hour on; ``-:--`` when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "-:--"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class EtaEstimator:
    """Time left for ``total`` steps, from an exponential moving average of the step time.

    Each :meth:`update` gives the step reached and the clock. The time per step of the first
    update (warm-up, a teacher's logits cached) only seeds the estimate: the next ones replace
    it by their running mean, which turns into an exponential moving average (weight
    ``alpha``) once it has seen ``1 / alpha`` updates, so the estimate still follows a lasting
    change of pace but not a single slow step.
    """

    def __init__(self, total: int, start: float = 0.0, alpha: float = 0.02) -> None:
        self.total = total
        self.alpha = alpha
        self.step_time: float | None = None
        self._last = (0, start)
        self._updates = 0

    def update(self, step: int, now: float) -> None:
        last_step, last_time = self._last
        if step <= last_step:
            return
        observed = (now - last_time) / (step - last_step)
        if self.step_time is None:  # the first steps (warm-up, caches) only seed the estimate
            self.step_time = observed
        else:  # the mean of the updates so far, then a moving average with a long memory
            self._updates += 1
            weight = max(1.0 / self._updates, self.alpha)
            self.step_time += weight * (observed - self.step_time)
        self._last = (step, now)

    def remaining(self) -> float:
        """Seconds left (``nan`` before the first update)."""
        if self.step_time is None:
            return math.nan
        return max(self.total - self._last[0], 0) * self.step_time


class TrainProgress:
    """What :func:`runtime.engine.fit` reports while it trains (nothing when disabled)."""

    def __init__(self, enabled: bool, total: int, steps_per_epoch: int, description: str):
        self.enabled = enabled
        self.total = total
        self.spe = max(steps_per_epoch, 1)
        self.epochs = max(math.ceil(total / self.spe), 1)
        self.description = description
        self.started = time.perf_counter()
        self.eta = EtaEstimator(total, start=self.started)
        self._said = self.started
        self._epoch_start = 0
        self.bar: Any = None
        if enabled and sys.stderr.isatty():
            self.bar = _rich_bar(description, total)

    def update(self, step: int, losses: Any) -> None:
        """After step ``step`` (1-based); ``losses`` holds the loss of every step so far."""
        if not self.enabled:
            return
        now = time.perf_counter()
        self.eta.update(step, now)
        if self.bar is not None:
            if step % 10 == 0 or step == self.total:
                bar, task = self.bar
                loss = float(losses[step - 1])
                eta = format_duration(self.eta.remaining())
                bar.update(task, completed=step, loss=f"{loss:.3f}", eta=eta)
            return
        epoch_end = step % self.spe == 0 or step == self.total
        quiet_for = now - self._said
        if step == self.total or (epoch_end and quiet_for >= MIN_GAP_S) or quiet_for >= HEARTBEAT_S:
            self._line(step, losses, now)
            self._said = now
        if epoch_end:
            self._epoch_start = step

    def _line(self, step: int, losses: Any, now: float) -> None:
        loss = float(losses[self._epoch_start : step].mean())
        epoch = min(math.ceil(step / self.spe), self.epochs)
        print(
            f"    epoch {epoch}/{self.epochs}  step {step}/{self.total}  loss {loss:.4f}  "
            f"elapsed {format_duration(now - self.started)}  "
            f"eta {format_duration(self.eta.remaining())}",
            file=sys.stderr,
            flush=True,
        )

    def close(self, step: int) -> None:
        if self.bar is not None:
            bar, task = self.bar
            bar.update(task, completed=step, eta=format_duration(0.0))
            bar.stop()
            self.bar = None


def _rich_bar(description: str, total: int) -> tuple[Any, Any]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("    {task.description}  loss {task.fields[loss]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta {task.fields[eta]}"),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task(description, total=total, loss="-", eta="-:--")
    bar.start()
    return bar, task
