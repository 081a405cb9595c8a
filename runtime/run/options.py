"""What the runtime is asked to do: a bound plan and how to run it (the typed request)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compiler.plan import Plan
from recipe_lang.diagnostics import Diagnostic


@dataclass(frozen=True)
class RunOptions:
    run_dir: Path
    resume: bool = False
    #: Start over on a run directory holding finished passes: the old run is moved aside to
    #: ``<run_dir>.old-<timestamp>`` (never deleted).
    fresh: bool = False
    quiet: bool = False
    #: Report training progress: a bar on a terminal, else one plain line per epoch.
    progress: bool = False
    #: Overrides the plan's ``set device`` (``--device``); None keeps the plan's.
    device: str | None = None
    #: Shown the preflight's warnings (KDR108: the recipe's warmup is longer than a training
    #: with this data) before any training; None: they are not shown.
    warn: Callable[[list[Diagnostic]], None] | None = None


@dataclass(frozen=True)
class RunRequest:
    """A plan (compiled and bound by the compiler) and the options of this run."""

    plan: Plan
    options: RunOptions

    @staticmethod
    def default_run_dir(plan: Plan) -> Path:
        return Path(str(plan.settings.get("run_dir") or Path("runs") / plan.recipe))
