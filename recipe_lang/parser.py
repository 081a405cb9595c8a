"""Parse ``.kdr`` text into a :class:`~recipe_lang.ast.Recipe`, collecting every syntax error.

The LALR parser stops at the first error; to report several in one run we blank the text up
to the next *statement start* (a line that opens with a declaration keyword or ``then``),
keeping every newline so positions stay exact, and parse the rest again from the ``resume``
rule. Error messages name what was expected in words, and common mistakes get a message of
their own (see :mod:`recipe_lang.friendly`).

>>> result = parse("train for 3 epochs distill from t")
>>> [d.code for d in result.diagnostics]
['KDR001']
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from lark import Token, Tree
from lark.exceptions import UnexpectedInput, UnexpectedToken, VisitError

from recipe_lang import ast
from recipe_lang.builder import AstBuilder, build_ast
from recipe_lang.diagnostics import Diagnostic, KdrError, Span, error, internal_error
from recipe_lang.friendly import describe_syntax_error, match_mistake
from recipe_lang.grammar import STATEMENT_START, STATEMENT_TOKENS, STATEMENT_WORDS, grammar
from recipe_lang.spans import token_span

#: The most syntax errors reported from one file (later ones are usually echoes).
MAX_SYNTAX_ERRORS = 20


@dataclass
class ParseResult:
    recipe: ast.Recipe | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source: str = ""
    file: str = "<recipe>"

    @property
    def ok(self) -> bool:
        return self.recipe is not None and not any(d.is_error for d in self.diagnostics)


def _end_span(text: str) -> Span:
    lines = text.split("\n")
    line = len(lines)
    col = len(lines[-1]) + 1
    # Point at the end of the last non-blank line rather than an empty trailing line.
    while line > 1 and not lines[line - 1].strip():
        line -= 1
        col = len(lines[line - 1].rstrip()) + 1
    return Span(line=line, column=col, end_line=line, end_column=col + 1)


def _misread_keyword(exc: UnexpectedInput) -> Token | None:
    """A statement keyword that the contextual lexer read as a NAME just before the error.

    Where a keyword cannot follow, the contextual lexer reads it as a name: in
    ``prune then evaluate`` the ``then`` becomes prune's subject and the parser only fails at
    ``evaluate``. The real error is at ``then``, and parsing should resume there.
    """
    if not isinstance(exc, UnexpectedToken):
        return None
    stack = getattr(getattr(exc, "state", None), "value_stack", None)
    top = stack[-1] if stack else None
    if isinstance(top, Token) and top.type == "NAME" and str(top) in STATEMENT_WORDS:
        return top
    return None


def _missing_comma(exc: UnexpectedInput, start: str) -> Token | None:
    """In ``with cutmix 1.0 label_smoothing 0.1`` the parser reads ``label_smoothing`` as the
    unit of ``cutmix 1.0`` (as in ``warmup 2 epochs``) and fails at ``0.1``: the comma is
    missing before ``label_smoothing``, so that is where the error points."""
    if not isinstance(exc, UnexpectedToken) or match_mistake(exc, start) != "missing-comma":
        return None
    stack = getattr(getattr(exc, "state", None), "value_stack", None)
    top = stack[-1] if stack else None
    value = exc.token.type in ("NUMBER", "PERCENT", "SIZE", "REF")
    if isinstance(top, Token) and top.type == "NAME" and value:
        return top
    return None


def _error_span(exc: UnexpectedInput, text: str, start: str = "start") -> Span:
    misread = _misread_keyword(exc)
    if misread is not None:
        return token_span(misread)
    comma = _missing_comma(exc, start)
    if comma is not None:
        return token_span(comma)
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        return _end_span(text)
    if isinstance(exc, UnexpectedToken) and exc.token.line is not None:
        return token_span(exc.token)
    line, col = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    return Span(line=line, column=col, end_line=line, end_column=col + 1)


def _blank_until(text: str, offset: int) -> str:
    """``text`` with everything before ``offset`` replaced by spaces (newlines kept)."""
    head = re.sub(r"[^\n]", " ", text[:offset])
    return head + text[offset:]


def _next_sync(text: str, exc: UnexpectedInput, after: int, floor: int) -> int | None:
    """Where to parse again: the failing token if it starts a statement, else the next line
    that does. Always past ``floor`` (the previous resume point), so recovery makes progress."""
    misread = _misread_keyword(exc)
    if misread is not None and misread.start_pos is not None and misread.start_pos > floor:
        return misread.start_pos
    if isinstance(exc, UnexpectedToken) and exc.token.type in STATEMENT_TOKENS and after > floor:
        return after
    line_end = text.find("\n", after)
    if line_end < 0:
        return None
    m = STATEMENT_START.search(text, line_end + 1)
    return m.start() if m else None


def _error_offset(exc: UnexpectedInput, text: str) -> int:
    pos = getattr(exc, "pos_in_stream", None)
    if isinstance(exc, UnexpectedToken):
        pos = exc.token.start_pos if exc.token.type != "$END" else len(text)
    return int(pos) if pos is not None else len(text)


def parse(source: str, file: str = "<recipe>") -> ParseResult:
    """Parse ``source``; never raises for bad input, every problem is a diagnostic."""
    # A parse allocates many small objects and frees none of them: the cyclic collector's
    # passes over them only cost time (superlinear in recipe size), so it pauses meanwhile.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _parse(source, file)
    except KdrError as exc:
        return ParseResult(None, [d.with_file(file) for d in exc.diagnostics], source, file)
    except RecursionError:  # the input nests deeper than the AST builder's stack: its fault
        deep = error("KDR102", "the recipe nests too deeply").with_file(file)
        return ParseResult(None, [deep], source, file)
    except Exception as exc:  # a bug in kdr, not in the recipe
        return ParseResult(None, [internal_error(exc, file)], source, file)
    finally:
        if collecting:
            gc.enable()


def _parse(source: str, file: str) -> ParseResult:
    diagnostics: list[Diagnostic] = []
    parser = grammar()
    try:
        tree = parser.parse(source, start="start", on_error=None)
    except UnexpectedInput as exc:
        diagnostics.extend(_collect_syntax_errors(source, exc))
        return ParseResult(None, [d.with_file(file) for d in diagnostics], source, file)
    try:
        recipe = build_ast(tree, diagnostics)
    except VisitError as exc:  # unwrap so our own errors reach the user unchanged
        raise exc.orig_exc from None
    recipe = recipe.model_copy(update={"comments": _comments(source)})
    return ParseResult(recipe, [d.with_file(file) for d in diagnostics], source, file)


#: Strings and comments, scanned left to right so that a `#` inside a string is no comment.
_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')


def _comments(source: str) -> list[ast.Comment]:
    """The comments of a source that parsed. Not by re-lexing with lark's root lexer: without
    the parser's context it reads ``1.`` as the pattern ``1`` and fails on the ``.``."""
    out = []
    for m in _STRING_OR_COMMENT.finditer(source):
        if not m.group().startswith("#"):
            continue
        line = source.count("\n", 0, m.start()) + 1
        column = m.start() - (source.rfind("\n", 0, m.start()) + 1) + 1
        text = m.group().rstrip()
        span = Span(line=line, column=column, end_line=line, end_column=column + len(m.group()))
        out.append(ast.Comment(span=span, text=text))
    return out


def _collect_syntax_errors(source: str, first: UnexpectedInput) -> list[Diagnostic]:
    diagnostics = [describe_syntax_error(first, source, _error_span(first, source))]
    text = source
    exc: UnexpectedInput | None = first
    floor = 0
    while exc is not None and len(diagnostics) < MAX_SYNTAX_ERRORS:
        sync = _next_sync(text, exc, _error_offset(exc, text), floor)
        if sync is None or sync <= floor:
            break
        floor = sync
        text = _blank_until(text, sync)
        try:
            grammar().parse(text, start="resume")
            exc = None
        except UnexpectedInput as nxt:
            exc = nxt
            diagnostics.append(
                describe_syntax_error(nxt, source, _error_span(nxt, text, "resume"), start="resume")
            )
    return diagnostics


def parse_value(text: str) -> ast.Value | None:
    """Parse a lone value (``3``, ``50%``, ``"x"``, ``sgd(lr=0.1)``); None if it does not parse.

    Used for ``--set NAME=VALUE``; spans point into ``text`` (line 1).
    """
    try:
        tree = grammar().parse(text, start="param_value")
        diagnostics: list[Diagnostic] = []
        node = AstBuilder(diagnostics).transform(tree)
    except (UnexpectedInput, VisitError):
        return None
    if diagnostics:
        return None
    value = node.children[0] if isinstance(node, Tree) else node
    return cast(ast.Value, value)


def parse_recipe(source: str, file: str = "<recipe>") -> ast.Recipe:
    """Parse or raise :class:`KdrError` with every diagnostic found."""
    result = parse(source, file)
    if not result.ok or result.recipe is None:
        raise KdrError(result.diagnostics)
    return result.recipe


def parse_file(path: str | Path) -> ParseResult:
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return ParseResult(
            None,
            [error("KDR001", f"cannot read recipe: {reason}").with_file(str(path))],
            "",
            str(path),
        )
    return parse(source, str(path))


__all__ = ["ParseResult", "grammar", "parse", "parse_file", "parse_recipe", "parse_value"]
