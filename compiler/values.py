"""Value checks: turn AST values into checked Python values, or diagnostics (KDR100-KDR104).

Every slot of a stage goes through one of these coercions, which follow ``$param`` references
(pointing the diagnostic at the use, with a note at the declaration) and report the range or
kind that was expected. The limits are the ones listed in ``docs/rules.md``.

>>> from recipe_lang.parser import parse_value
>>> bag = []
>>> Values({}, bag.append).ratio(parse_value("50%"), "prune amount")
0.5
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

from recipe_lang import ast
from recipe_lang.diagnostics import Diagnostic, Note, Span, error
from recipe_lang.printer import value as value_text


def did_you_mean(word: str, candidates: Iterable[str]) -> Note | None:
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return Note(kind="help", message=f"did you mean `{close[0]}`?") if close else None


def choices_note(candidates: Iterable[str]) -> Note:
    return Note(kind="note", message="expected one of: " + ", ".join(f"`{c}`" for c in candidates))


def unknown(
    code: str,
    what: str,
    word: str,
    span: Span,
    candidates: Iterable[str],
    *,
    list_choices: bool = True,
) -> Diagnostic:
    candidates = list(candidates)
    notes = [n for n in (did_you_mean(word, candidates),) if n]
    if list_choices and candidates:
        notes.append(choices_note(candidates))
    return error(code, f"unknown {what} `{word}`", span, *notes)


def describe(v: ast.Value) -> str:
    return {
        "number": "a number",
        "percent": "a percentage",
        "size": "a size",
        "string": "a string",
        "name": "a name",
        "ref": "a reference",
        "call": "a call",
        "list": "a list",
    }[v.kind]


def to_python(v: ast.Value) -> Any:
    """The JSON-able Python value of a literal (calls become ``{"call": ...}`` dicts)."""
    if isinstance(v, ast.Number):
        return int(v.value) if v.value.is_integer() and _looks_int(v.text) else v.value
    if isinstance(v, ast.Percent):
        return v.value / 100.0
    if isinstance(v, ast.Size):
        return int(v.value) if v.value.is_integer() else v.value
    if isinstance(v, ast.String):
        return v.value
    if isinstance(v, ast.Name):
        return {"true": True, "false": False, "none": None, "null": None}.get(
            v.value.lower(), v.value
        )
    if isinstance(v, ast.Call):
        return {
            "call": v.callee,
            "factory": v.factory,
            "args": [to_python(a) for a in v.args],
            "kwargs": {k.name: to_python(k.value) for k in v.kwargs},
        }
    if isinstance(v, ast.NumberList):
        return [to_python(x) for x in v.items]
    raise TypeError(f"unresolved reference ${v.name}")  # refs are resolved before this


def _looks_int(text: str) -> bool:
    return not any(c in text for c in ".eE")


class Values:
    """Coerces values in the scope of a recipe's params, reporting through ``report``."""

    def __init__(
        self, params: dict[str, tuple[ast.Value, Span]], report: Callable[[Diagnostic], None]
    ):
        #: name -> (value, span of the declaration)
        self.params = params
        self.report = report
        #: Params that were referenced at least once.
        self.used: set[str] = set()
        #: Params whose value comes from ``--set``.
        self.overridden: set[str] = set()

    # ---- references ------------------------------------------------------------------------
    def resolve(self, v: ast.Value) -> tuple[ast.Value | None, Note | None]:
        """Follow a ``$ref``; returns the value and a note pointing at its declaration."""
        if not isinstance(v, ast.Ref):
            return v, None
        if v.name not in self.params:
            notes = [n for n in (did_you_mean(v.name, self.params),) if n]
            notes.append(Note(kind="help", message=f"declare it: `param {v.name} = ...`"))
            self.report(error("KDR100", f"unknown param `${v.name}`", v.span, *notes))
            return None, None
        self.used.add(v.name)
        value, decl = self.params[v.name]
        if v.name in self.overridden:
            message = f"`${v.name}` is declared here; `--set` gives it `{value_text(value)}`"
            return value, Note(message=message, span=decl)
        return value, Note(message=f"`${v.name}` is declared here", span=decl)

    def literal(self, v: ast.Value) -> Any:
        """Any value as JSON-able Python, references resolved (None after a diagnostic)."""
        value, _ = self.resolve(v)
        if value is None:
            return None
        if isinstance(value, ast.Call):
            return {
                "call": value.callee,
                "factory": value.factory,
                "args": [self.literal(a) for a in value.args],
                "kwargs": {k.name: self.literal(k.value) for k in value.kwargs},
            }
        if isinstance(value, ast.NumberList):
            return [self.literal(x) for x in value.items]
        return to_python(value)

    # ---- numbers ---------------------------------------------------------------------------
    def _kind_error(
        self,
        v: ast.Value,
        at: Span,
        what: str,
        expected: str,
        decl: Note | None,
        hint: str | None = None,
    ) -> None:
        notes = [n for n in (decl,) if n]
        if hint:
            notes.append(Note(kind="help", message=hint))
        self.report(error("KDR104", f"{what} must be {expected}, not {describe(v)}", at, *notes))

    def _range_error(
        self, at: Span, what: str, shown: str, expected: str, decl: Note | None
    ) -> None:
        notes = [n for n in (decl,) if n]
        self.report(error("KDR102", f"{what} must be {expected}, got {shown}", at, *notes))

    def number(
        self,
        v: ast.Value,
        what: str,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
    ) -> float | None:
        """A plain number within [low, high] (open ends where asked)."""
        value, decl = self.resolve(v)
        if value is None:
            return None
        if not isinstance(value, ast.Number):
            hint = None
            if isinstance(value, ast.Percent):
                hint = f"write it as a fraction: `{value.value / 100:g}`"
            self._kind_error(value, v.span, what, "a number", decl, hint)
            return None
        x = value.value
        too_low = low is not None and (x <= low if low_open else x < low)
        too_high = high is not None and (x >= high if high_open else x > high)
        if too_low or too_high:
            self._range_error(
                v.span, what, value.text, _interval(low, high, low_open, high_open), decl
            )
            return None
        return x

    def count(self, v: ast.Value, what: str, *, minimum: int = 1) -> int | None:
        """A whole number >= ``minimum``."""
        value, decl = self.resolve(v)
        if value is None:
            return None
        if not isinstance(value, ast.Number):
            hint = "a count is a whole number, like `3`" if isinstance(value, ast.Percent) else None
            self._kind_error(value, v.span, what, "a whole number", decl, hint)
            return None
        if not value.value.is_integer():
            self.report(
                error(
                    "KDR104",
                    f"{what} must be a whole number, got {value.text}",
                    v.span,
                    *[n for n in (decl,) if n],
                )
            )
            return None
        if value.value < minimum:
            self._range_error(v.span, what, value.text, f"at least {minimum}", decl)
            return None
        return int(value.value)

    def ratio(self, v: ast.Value, what: str, *, zero: bool = False) -> float | None:
        """A percentage 0% < p < 100% (0% <= p with ``zero``), as a fraction."""
        value, decl = self.resolve(v)
        if value is None:
            return None
        if not isinstance(value, ast.Percent):
            hint = None
            if isinstance(value, ast.Number):
                hint = f"write a percentage: `{value.text}%`"
            self._kind_error(value, v.span, what, "a percentage like `50%`", decl, hint)
            return None
        above_low = value.value >= 0 if zero else value.value > 0
        if not (above_low and value.value < 100):
            allowed = "at least 0% and below 100%" if zero else "between 0% and 100% (exclusive)"
            self._range_error(v.span, what, value.text, allowed, decl)
            return None
        return value.value / 100.0

    def name(self, v: ast.Value, what: str, choices: Iterable[str] | None = None) -> str | None:
        """A bare name or a string, optionally one of ``choices`` (KDR103 otherwise)."""
        value, decl = self.resolve(v)
        if value is None:
            return None
        if not isinstance(value, (ast.Name, ast.String)):
            self._kind_error(value, v.span, what, "a name", decl)
            return None
        word = value.value
        if choices is not None and word not in set(choices):
            self.report(unknown("KDR103", what, word, v.span, choices))
            return None
        return word


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        lb = "(" if low_open else "["
        rb = ")" if high_open else "]"
        return f"in {lb}{low:g}, {high:g}{rb}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    assert high is not None
    return f"{'<' if high_open else '<='} {high:g}"
