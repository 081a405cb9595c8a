"""Running a plan: the typed request, the executor loop, op handlers, resume and the dry run.

The runtime is entered through :func:`run` with a :class:`RunRequest` (a plan compiled and
bound by the compiler, plus :class:`RunOptions`), and ``kdr check --models`` through
:func:`check_plan`.
"""

from runtime.run.dry_run import Estimate, ModelCheckReport, check_plan, dry_run
from runtime.run.executor import run
from runtime.run.options import RunOptions, RunRequest

__all__ = [
    "Estimate",
    "ModelCheckReport",
    "RunOptions",
    "RunRequest",
    "check_plan",
    "dry_run",
    "run",
]
