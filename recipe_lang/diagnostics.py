"""Diagnostics: what kdr tells the user about a recipe, and how it is rendered.

Every problem kdr finds, from a stray character to a teacher without weights, is a
:class:`Diagnostic` with a stable code (``KDR001`` ... ``KDR999``), a severity, a message and
the source span that caused it. Diagnostics are *collected* (see :class:`DiagnosticBag`) rather
than raised one at a time, so ``kdr check`` reports every problem in one run. Where code must
stop, it raises :class:`KdrError`, the one root error class, which carries its diagnostics.

>>> d = Diagnostic(code="KDR100", message="unknown model `studnet`",
...                span=Span(line=3, column=7, end_line=3, end_column=14), file="r.kdr")
>>> render(d, "a\\nb\\ntrain studnet for 1 epoch\\n").splitlines()[0]
'r.kdr:3:7: error[KDR100]: unknown model `studnet`'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["error", "warning", "note"]

_SEVERITY_RANK = {"error": 0, "warning": 1, "note": 2}

#: The most diagnostics one run collects; past it a single note says how many were dropped.
MAX_DIAGNOSTICS = 200


class Span(BaseModel):
    """A region of source text: 1-based lines and columns, end column exclusive."""

    model_config = ConfigDict(frozen=True)

    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"

    @staticmethod
    def cover(first: Span, last: Span) -> Span:
        """The span from the start of ``first`` to the end of ``last``."""
        return Span(
            line=first.line,
            column=first.column,
            end_line=last.end_line,
            end_column=last.end_column,
        )


class Note(BaseModel):
    """A secondary message: ``note:`` or ``help:``, optionally pointing at another span."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["note", "help"] = "note"
    message: str
    span: Span | None = None


class Diagnostic(BaseModel):
    """One finding about a recipe, with a stable code and the span that caused it."""

    model_config = ConfigDict(frozen=True)

    code: str
    severity: Severity = "error"
    message: str
    span: Span | None = None
    file: str = "<recipe>"
    notes: tuple[Note, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def sort_key(self) -> tuple[str, int, int, int, str]:
        line = self.span.line if self.span else 10**9
        col = self.span.column if self.span else 0
        return (self.file, line, col, _SEVERITY_RANK[self.severity], self.code)

    def with_file(self, file: str) -> Diagnostic:
        return self.model_copy(update={"file": file})

    def to_json_dict(self) -> dict[str, object]:
        """The ``--json`` form fixed by the spec."""
        span = self.span
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": span.line if span else None,
            "column": span.column if span else None,
            "end_line": span.end_line if span else None,
            "end_column": span.end_column if span else None,
            "notes": [
                {
                    "kind": n.kind,
                    "message": n.message,
                    "line": n.span.line if n.span else None,
                    "column": n.span.column if n.span else None,
                }
                for n in self.notes
            ],
        }


class KdrError(Exception):
    """The root of every error kdr raises on purpose; it carries the diagnostics to show."""

    def __init__(self, diagnostics: Diagnostic | Iterable[Diagnostic]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        first = self.diagnostics[0].message if self.diagnostics else "kdr error"
        super().__init__(first)


def error(code: str, message: str, span: Span | None = None, *notes: Note) -> Diagnostic:
    return Diagnostic(code=code, severity="error", message=message, span=span, notes=notes)


def warning(code: str, message: str, span: Span | None = None, *notes: Note) -> Diagnostic:
    return Diagnostic(code=code, severity="warning", message=message, span=span, notes=notes)


def note(code: str, message: str, span: Span | None = None, *notes: Note) -> Diagnostic:
    return Diagnostic(code=code, severity="note", message=message, span=span, notes=notes)


def internal_error(exc: BaseException, file: str = "<recipe>") -> Diagnostic:
    """KDR999: a bug in kdr, reported as a diagnostic rather than a traceback."""
    return Diagnostic(
        code="KDR999",
        message="internal error",
        file=file,
        notes=(
            Note(message=f"{type(exc).__name__}: {exc}"),
            Note(
                kind="help",
                message="this is a bug in kdr; please report it with the recipe that caused it",
            ),
        ),
    )


class DiagnosticBag:
    """Collects diagnostics up to a cap, deduplicated, and hands them back sorted."""

    def __init__(self, file: str = "<recipe>", cap: int = MAX_DIAGNOSTICS):
        self.file = file
        self.cap = cap
        self._items: list[Diagnostic] = []
        self._seen: set[tuple[str, str, Span | None]] = set()
        self.dropped = 0

    def add(self, diagnostic: Diagnostic) -> None:
        if diagnostic.file == "<recipe>":
            diagnostic = diagnostic.with_file(self.file)
        key = (diagnostic.code, diagnostic.message, diagnostic.span)
        if key in self._seen:
            return
        if len(self._items) >= self.cap:
            self.dropped += 1
            return
        self._seen.add(key)
        self._items.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        for d in diagnostics:
            self.add(d)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self._items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.sorted())

    def __len__(self) -> int:
        return len(self._items)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self._items, key=Diagnostic.sort_key)


# ---------------------------------------------------------------------------------------------
# Rendering


def _source_excerpt(span: Span, lines: list[str]) -> list[str]:
    if not (1 <= span.line <= len(lines)):
        return []
    text = lines[span.line - 1].rstrip("\n").expandtabs(1)
    gutter = str(span.line)
    pad = " " * len(gutter)
    start = max(span.column, 1)
    if span.end_line == span.line:
        end = max(span.end_column, start + 1)
    else:  # a multi-line span: underline to the end of its first line
        end = max(len(text) + 1, start + 1)
    width = max(end - start, 1)
    marker = "^" + "~" * (width - 1)
    return [f" {gutter} | {text}", f" {pad} | {' ' * (start - 1)}{marker}"]


#: Terminal colour codes that messages quoted from other libraries may carry.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def render(diagnostic: Diagnostic, source: str | None = None) -> str:
    """Render one diagnostic as text: the fixed first line, the source line, notes.

    The first line is ``FILE:LINE:COL: SEVERITY[CODE]: MESSAGE`` (``FILE: ...`` without a span).
    """
    d = diagnostic.model_copy(update={"message": _ANSI.sub("", diagnostic.message)})
    where = f"{d.file}:{d.span.line}:{d.span.column}" if d.span else d.file
    out = [f"{where}: {d.severity}[{d.code}]: {d.message}"]
    # Lark counts lines by "\n" only; splitlines() would also break on "\r", "\u2028"...
    lines = source.split("\n") if source is not None else []
    if d.span and lines:
        out.extend(_source_excerpt(d.span, lines))
    for n in d.notes:
        at = f" (at {n.span.line}:{n.span.column})" if n.span else ""
        out.append(f"{n.kind}: {n.message}{at}")
        if n.span and lines and n.span.line != (d.span.line if d.span else -1):
            out.extend(_source_excerpt(n.span, lines))
    return "\n".join(out)


def render_all(diagnostics: Iterable[Diagnostic], sources: dict[str, str] | None = None) -> str:
    sources = sources or {}
    return "\n\n".join(render(d, sources.get(d.file)) for d in diagnostics)


def to_json(diagnostics: Iterable[Diagnostic]) -> str:
    return json.dumps([d.to_json_dict() for d in diagnostics], indent=2)


def summary(diagnostics: list[Diagnostic]) -> str:
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = sum(d.severity == "warning" for d in diagnostics)
    notes = sum(d.severity == "note" for d in diagnostics)
    parts = [f"{errors} error{'s' * (errors != 1)}", f"{warnings} warning{'s' * (warnings != 1)}"]
    if notes:
        parts.append(f"{notes} note{'s' * (notes != 1)}")
    return ", ".join(parts)
