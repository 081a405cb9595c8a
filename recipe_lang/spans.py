"""Spans and token text: where a token or node sits in the source, and what a string says.

The AST builder takes every span from the tokens themselves (cheaper than Lark's position
tracking); a node's span runs from its first token or child to its last.
"""

from __future__ import annotations

import re
from typing import Any

from lark import Token

from recipe_lang import ast
from recipe_lang.diagnostics import Span


def token_span(tok: Token) -> Span:
    return Span(
        line=tok.line or 1,
        column=tok.column or 1,
        end_line=tok.end_line or tok.line or 1,
        end_column=tok.end_column or (tok.column or 1) + len(tok),
    )


def span_of(*items: Any) -> Span:
    """The span from the first to the last token or node among ``items`` (nested in lists and
    tuples; strings and None are skipped)."""
    first: Span | None = None
    last: Span | None = None
    stack = list(reversed(items))
    while stack:
        item = stack.pop()
        if isinstance(item, Token):
            span = token_span(item)
        elif isinstance(item, ast.Node):
            span = item.span
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
            continue
        else:
            continue
        if first is None:
            first = span
        last = span
    if first is None or last is None:
        return Span(line=1, column=1, end_line=1, end_column=1)
    return Span.cover(first, last)


def decode_string(tok: Token) -> str:
    """The text of a STRING token: quotes dropped, ``\\n`` and ``\\t`` decoded, any other
    escaped character kept as itself (the printer writes back only these escapes)."""
    body = str(tok)[1:-1]
    return re.sub(
        r"\\(.)",
        lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)),
        body,
    )


__all__ = ["decode_string", "span_of", "token_span"]
