"""The lowering's shared state: declarations, value checks, the steps so far, snapshots.

Stage-kind modules (``compiler/lower/<kind>.py``) and the helpers in :mod:`.names` and
:mod:`.clauses` all act on one :class:`LowerState`.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler.declarations import Declarations
from compiler.program import ModelSpec, Step
from compiler.values import Values
from recipe_lang.diagnostics import Diagnostic, Span


class LowerState:
    def __init__(self, decls: Declarations, values: Values, report: Callable[[Diagnostic], None]):
        self.decls = decls
        self.values = values
        self.report = report
        self.models: dict[str, ModelSpec] = decls.models
        self.steps: list[Step] = []
        #: snapshot name -> span of the stage that takes it (taken so far).
        self.snapshots: dict[str, Span] = {}
        #: every snapshot the pipeline takes, wherever it is taken.
        self.future_snapshots: dict[str, Span] = {}
        #: memoized unrolled sizes of ``repeat`` bodies, by block identity.
        self.sizes: dict[int, int] = {}
        #: models a step has trained so far.
        self.trained: set[str] = set()
