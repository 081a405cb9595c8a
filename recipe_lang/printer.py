"""The canonical printer behind ``kdr fmt``.

One layout: one declaration per line (a blank line between declarations of different kinds
and before the pipeline), one stage per line led by ``then``, ``repeat`` bodies indented by
two spaces, options in a fixed order. Comments are kept: a comment on its own line stays
above the statement that follows it, a comment at the end of a line stays at the end of the
printed statement that line belongs to. Printing is idempotent and
``parse(fmt(x)) == parse(x)`` up to spans.

>>> from recipe_lang.parser import parse_recipe
>>> print(format_recipe(parse_recipe("train  for 3 epochs then   evaluate")), end="")
train for 3 epochs
then evaluate
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence

from recipe_lang import ast
from recipe_lang.words import PRUNE_KINDS


def value(v: ast.Value | ast.Num) -> str:
    if isinstance(v, (ast.Number, ast.Percent, ast.Size)):
        return v.text
    if isinstance(v, ast.String):
        return string(v.value)
    if isinstance(v, ast.Name):
        return v.value
    if isinstance(v, ast.Ref):
        return f"${v.name}"
    if isinstance(v, ast.NumberList):
        return "[" + ", ".join(value(x) for x in v.items) + "]"
    return call(v)


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def string(text: str) -> str:
    # Only the escapes the lexer decodes (see spans.decode_string); JSON's `\u0001` or `\r`
    # would read back as `u0001` / `r`. Every other character is written as it is.
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in text) + '"'


def call(c: ast.Call) -> str:
    callee = string(c.callee) if c.factory else c.callee
    args = [value(a) for a in c.args] + [f"{k.name}={value(k.value)}" for k in c.kwargs]
    return f"{callee}({', '.join(args)})"


def _teacher(t: ast.Teacher) -> str:
    return t.name if isinstance(t, ast.TeacherName) else call(t)


def _options(options: Sequence[ast.Option]) -> list[str]:
    return [f"{o.name.value} {value(o.value)}" for o in options]


def _duration(d: ast.Duration | None) -> list[str]:
    return [f"for {value(d.count)} {d.unit.value}"] if d else []


def _modifiers(mods: Sequence[ast.Modifier]) -> str:
    parts = []
    for m in mods:
        if isinstance(m, ast.DistillModifier):
            parts.append(" ".join(["distill from", _teacher(m.teacher), *_options(m.options)]))
        elif isinstance(m, ast.CallModifier):
            parts.append(f"{m.name.value} {call(m.call)}")
        elif isinstance(m, ast.WordModifier):
            by = f" by {m.by.value}" if m.by else ""
            parts.append(f"{m.name.value} {m.word.value}{by}")
        else:
            unit = f" {m.unit.value}" if m.unit else ""
            parts.append(f"{m.name.value} {value(m.value)}{unit}")
    return "with " + ", ".join(parts)


def _gradual(g: ast.Gradual) -> str:
    """``gradually over N unit [from X%] [every K unit] [curve]``: options in this order."""
    parts = ["gradually over", value(g.over.count), g.over.unit.value]
    if g.start is not None:
        parts += ["from", value(g.start)]
    if g.every is not None:
        parts += ["every", value(g.every.count), g.every.unit.value]
    if g.curve is not None:
        parts.append(g.curve.value)
    return " ".join(parts)


def _scopes(keyword: str, scopes: Sequence[ast.Scope]) -> list[str]:
    if not scopes:
        return []
    return [keyword + " " + ", ".join(string(s.pattern) if s.quoted else s.pattern for s in scopes)]


def _subject(s: ast.StageBase) -> list[str]:
    return [s.subject.value] if s.subject else []


def _syntax_line(s: ast.StageBase) -> str:
    """A stage printed from its ``SYNTAX`` (absent optional fields are left out)."""
    assert s.SYNTAX is not None
    parts = []
    for word in s.SYNTAX.split():
        field = re.fullmatch(r"{(\w+)}", word)
        if field is None:
            parts.append(word)
            continue
        v = getattr(s, field.group(1))
        if v is not None:
            parts.append(string(v.value) if isinstance(v, ast.String) else v.value)
    return " ".join(parts)


def stage_head(s: ast.Stage) -> str:
    """One stage on one line (a ``repeat`` prints only its opening ``repeat N {``)."""
    parts: list[str]
    if s.SYNTAX:
        return _syntax_line(s)
    if isinstance(s, ast.TrainStage):
        parts = [s.verb, *_subject(s), *_duration(s.duration)]
        if s.modifiers:
            parts.append(_modifiers(s.modifiers))
    elif isinstance(s, ast.DistillStage):
        parts = [
            "distill",
            *_subject(s),
            "from",
            _teacher(s.teacher),
            *_options(s.options),
            *_duration(s.duration),
        ]
        if s.modifiers:
            parts.append(_modifiers(s.modifiers))
    elif isinstance(s, ast.PruneStage):
        if s.budget is not None:
            amount = f"to {value(s.budget.value)} {s.budget.unit.value}"
        elif s.pattern is not None:
            amount = f"{s.pattern.n}:{s.pattern.m}"
        else:
            amount = value(s.amount) if s.amount is not None else ""
        # The spec's order: `50% channels by l1 global`: the kind of pruning before `by`,
        # every other word (local/global, unknown ones) after it.
        kind = [w.value for w in s.words if w.value in PRUNE_KINDS]
        rest = [w.value for w in s.words if w.value not in PRUNE_KINDS]
        parts = ["prune", *_subject(s), amount, *kind]
        if s.criterion:
            parts.append(f"by {s.criterion.value}")
        parts += rest
        parts += _scopes("in", s.include) + _scopes("except", s.exclude)
        if s.gradual is not None:
            parts.append(_gradual(s.gradual))
        if s.modifiers:
            parts += [_modifiers(s.modifiers), *_duration(s.duration)]
    elif isinstance(s, ast.ReplaceStage):
        repl = s.replacement.value if isinstance(s.replacement, ast.Ident) else call(s.replacement)
        parts = [
            "replace",
            *_subject(s),
            s.target.value,
            *_scopes("in", s.include),
            *_scopes("except", s.exclude),
            "with",
            repl,
        ]
    elif isinstance(s, ast.QuantizeStage):
        parts = ["quantize", *_subject(s), s.precision.value, *(w.value for w in s.words)]
        if s.calibrate:
            parts.append(f"calibrate {value(s.calibrate.count)}")
            if s.calibrate.unit:
                parts.append(s.calibrate.unit.value)
        if s.modifiers:
            parts += [_modifiers(s.modifiers), *_duration(s.duration)]
    elif isinstance(s, ast.ExportStage):
        parts = ["export", *_subject(s), s.format.value, string(s.path.value)]
    elif isinstance(s, ast.RepeatStage):
        parts = ["repeat", value(s.count), "{"]
    else:  # pragma: no cover - every stage without a SYNTAX has a branch above
        raise TypeError(f"no layout for stage `{s.kind}`")
    return " ".join(p for p in parts if p)


def decl_line(d: ast.Decl) -> str:
    if isinstance(d, ast.RecipeDecl):
        return f"recipe {string(d.name.value)}"
    if isinstance(d, ast.ParamDecl):
        return f"param {d.name.value} = {value(d.value)}"
    if isinstance(d, ast.SetDecl):
        return f"set {d.key.value} = {value(d.value)}"
    if isinstance(d, ast.DataDecl):
        name = f" {d.name.value}" if d.name else ""
        return f"data{name} = {call(d.call)}"
    weights = f" from {string(d.weights.value)}" if d.weights else ""
    return f"model {d.name.value} = {call(d.call)}{weights}"


class _Writer:
    """Emits lines and places comments by source line.

    Statements are emitted in source order, so the comments still pending are always taken
    from the front: printing stays linear in the size of the recipe.
    """

    def __init__(self, comments: Sequence[ast.Comment]):
        self.pending = deque(sorted(comments, key=lambda c: (c.span.line, c.span.column)))
        self.lines: list[str] = []

    def _take(self, before_line: int) -> list[ast.Comment]:
        taken = []
        while self.pending and self.pending[0].span.line < before_line:
            taken.append(self.pending.popleft())
        return taken

    def leading(self, node: ast.Node, indent: str) -> None:
        for c in self._take(node.span.line):
            self.lines.append(indent + c.text)

    def emit(self, text: str, first_line: int, last_line: int) -> None:
        """``text`` for source lines ``first_line..last_line``, with their trailing comments.

        Comments above ``first_line`` were placed by :meth:`leading` just before."""
        trailing = self._take(last_line + 1)
        self.lines.append(" ".join([text, *(c.text for c in trailing)]))

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def rest(self, indent: str = "") -> None:
        self.lines.extend(indent + c.text for c in self.pending)
        self.pending.clear()


def _stages(w: _Writer, stages: Sequence[ast.Stage], indent: str) -> None:
    for i, s in enumerate(stages):
        w.leading(s, indent)
        lead = indent + ("then " if i else "")
        if isinstance(s, ast.RepeatStage):
            w.emit(lead + stage_head(s), s.span.line, s.span.line)
            _stages(w, s.stages, indent + "  ")
            w.leading(
                ast.Node(span=s.span.model_copy(update={"line": s.span.end_line})), indent + "  "
            )
            w.emit(indent + "}", s.span.end_line, s.span.end_line)
        else:
            w.emit(lead + stage_head(s), s.span.line, s.span.end_line)


def format_recipe(recipe: ast.Recipe) -> str:
    """The canonical text of ``recipe``, ending in one newline."""
    w = _Writer(recipe.comments)
    previous_kind = None
    for d in recipe.decls:
        if previous_kind is not None and d.kind != previous_kind:
            w.blank()
        w.leading(d, "")
        w.emit(decl_line(d), d.span.line, d.span.end_line)
        previous_kind = d.kind
    if recipe.stages:
        if recipe.decls:
            w.blank()
        _stages(w, recipe.stages, "")
    w.rest()
    while w.lines and w.lines[-1] == "":
        w.lines.pop()
    return "\n".join(w.lines) + "\n" if w.lines else ""
