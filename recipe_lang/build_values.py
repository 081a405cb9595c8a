"""Builds value nodes (numbers, strings, names, calls) and holds the builder's shared helpers.

:class:`ValueBuilder` is the base of :class:`recipe_lang.builder.AstBuilder`: one method per
grammar rule, ``rule(meta, children) -> node``. The helpers here turn tokens into identifiers
and collect KDR001 diagnostics for what the grammar leaves open (a keyword used as a name).
"""

from __future__ import annotations

import math
from typing import Any

from lark import Token
from lark.tree import Meta

from recipe_lang import ast
from recipe_lang.diagnostics import Diagnostic, Note, Span, error
from recipe_lang.grammar import KEYWORDS
from recipe_lang.spans import decode_string, span_of, token_span

_SIZE_SUFFIX = {"k": 1e3, "m": 1e6, "g": 1e9}


class ValueBuilder:
    """Values and the helpers every part of the AST builder uses."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics

    # ---- helpers ---------------------------------------------------------------------------
    def _ident(self, tok: Token, *, declared: str | None = None) -> ast.Ident:
        """An identifier; ``declared`` names what kind of thing is being declared here."""
        ident = ast.Ident(span=token_span(tok), value=str(tok))
        if declared and ident.value in KEYWORDS:
            self.diagnostics.append(
                error(
                    "KDR001",
                    f"`{ident.value}` is a keyword; pick another {declared} name",
                    ident.span,
                    Note(
                        kind="help", message=f"for example `{ident.value}_1` or `my_{ident.value}`"
                    ),
                )
            )
        return ident

    def _subject(self, tok: Token | None) -> ast.Ident | None:
        """The model a stage acts on: a keyword there is a mistake, not a model name (the
        contextual lexer reads `then` as a NAME where `then` cannot follow)."""
        if tok is None:
            return None
        ident = ast.Ident(span=token_span(tok), value=str(tok))
        if ident.value in KEYWORDS:
            self._complain(
                f"`{ident.value}` is a keyword, not a model name",
                ident.span,
                "name the model the stage acts on, or leave it out to use `student`",
            )
        return ident

    def _complain(self, message: str, span: Span, help_text: str | None = None) -> None:
        notes = (Note(kind="help", message=help_text),) if help_text else ()
        self.diagnostics.append(error("KDR001", message, span, *notes))

    # ---- values ----------------------------------------------------------------------------
    def _finite(self, tok: Token, value: float) -> float:
        """``1e309`` reads as infinity, which no setting accepts and JSON cannot hold."""
        if not math.isfinite(value):
            self.diagnostics.append(error("KDR102", f"`{tok}` is too large", token_span(tok)))
        return value

    def number(self, meta: Meta, c: list[Token]) -> ast.Number:
        value = self._finite(c[0], float(c[0]))
        return ast.Number(span=token_span(c[0]), value=value, text=str(c[0]))

    def percent(self, meta: Meta, c: list[Token]) -> ast.Percent:
        value = self._finite(c[0], float(c[0][:-1]))
        return ast.Percent(span=token_span(c[0]), value=value, text=str(c[0]))

    def size(self, meta: Meta, c: list[Token]) -> ast.Size:
        text = str(c[0])
        value = self._finite(c[0], float(text[:-1]) * _SIZE_SUFFIX[text[-1].lower()])
        return ast.Size(span=token_span(c[0]), value=value, text=text)

    def ref(self, meta: Meta, c: list[Token]) -> ast.Ref:
        return ast.Ref(span=token_span(c[0]), name=str(c[0])[1:])

    def string(self, meta: Meta, c: list[Token]) -> ast.String:
        return ast.String(span=token_span(c[0]), value=decode_string(c[0]))

    def name(self, meta: Meta, c: list[Token]) -> ast.Name:
        return ast.Name(span=token_span(c[0]), value=str(c[0]))

    def number_list(self, meta: Meta, c: list[Any]) -> ast.NumberList:
        items = [x for x in c[1:-1] if x is not None]
        return ast.NumberList(span=span_of(c[0], c[-1]), items=items)

    def callee_name(self, meta: Meta, c: list[Token]) -> tuple[str, bool, Token]:
        return (str(c[0]), False, c[0])

    def callee_factory(self, meta: Meta, c: list[Token]) -> tuple[str, bool, Token]:
        return (decode_string(c[0]), True, c[0])

    def positional_arg(self, meta: Meta, c: list[Any]) -> Any:
        return c[0]

    def keyword_arg(self, meta: Meta, c: list[Any]) -> ast.KeywordArg:
        return ast.KeywordArg(span=span_of(c), name=str(c[0]), value=c[1])

    def call(self, meta: Meta, c: list[Any]) -> ast.Call:
        callee, factory, _ = c[0]
        args = [a for a in c[1:-1] if a is not None]
        positional = [a for a in args if not isinstance(a, ast.KeywordArg)]
        keywords = [a for a in args if isinstance(a, ast.KeywordArg)]
        if keywords and positional and args.index(keywords[0]) < args.index(positional[-1]):
            self._complain(
                "a positional argument follows a keyword argument",
                positional[-1].span,
                "put positional arguments first",
            )
        seen: set[str] = set()
        for k in keywords:
            if k.name in seen:
                self._complain(f"argument `{k.name}` is given twice", k.span)
            seen.add(k.name)
        return ast.Call(
            span=span_of(c[0][2], c[-1]),
            callee=callee,
            factory=factory,
            args=positional,
            kwargs=keywords,
        )
