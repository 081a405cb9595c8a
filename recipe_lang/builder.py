"""Builds the AST from Lark's parse tree, with spans, and checks what the grammar leaves open.

The grammar is deliberately permissive where a precise message helps more than a syntax error
(a declared name that spells a keyword, a duration given twice, a missing precision after
``quantize student``); those become KDR001 diagnostics collected here, not exceptions.

One method per grammar rule, spread over three modules by what it builds: values
(:mod:`recipe_lang.build_values`), stages (:mod:`recipe_lang.build_stages`) and, here,
declarations and the recipe itself.
"""

from __future__ import annotations

import functools
from typing import Any

from lark import Token, Tree
from lark.tree import Meta

from recipe_lang import ast
from recipe_lang.build_stages import SYNTAX_STAGES, StageBuilder
from recipe_lang.diagnostics import Diagnostic
from recipe_lang.spans import decode_string, span_of, token_span


class AstBuilder(StageBuilder):
    """Turns a Lark tree into AST nodes, bottom-up: ``rule(meta, children)`` per tree node.

    A plain walker rather than ``lark.Transformer`` with ``v_args(meta=True)``: lark wraps every
    callback call, which made building the AST cost more than parsing (see bench/compile.py).
    """

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__(diagnostics)
        self._methods: dict[str, Any] = {}

    def transform(self, tree: Tree[Token]) -> Any:
        """Build the node for ``tree`` (a subtree with no method stays a ``Tree``)."""
        children = [self.transform(c) if isinstance(c, Tree) else c for c in tree.children]
        name = str(tree.data)
        method = self._methods.get(name)
        if method is None:
            method = getattr(self, name, None) if not name.startswith("_") else None
            if method is None and name in SYNTAX_STAGES:
                method = functools.partial(self._from_syntax, name)
            self._methods[name] = method or False
        if not method:
            return Tree(tree.data, children, tree.meta)
        return method(tree.meta, children)

    def _from_syntax(self, kind: str, meta: Meta, c: list[Any]) -> ast.StageBase:
        return self.syntax_stage(kind, c)

    # ---- declarations ----------------------------------------------------------------------
    def recipe_decl(self, meta: Meta, c: list[Token]) -> ast.RecipeDecl:
        name = ast.String(span=token_span(c[1]), value=decode_string(c[1]))
        return ast.RecipeDecl(span=span_of(c), name=name)

    def param_decl(self, meta: Meta, c: list[Any]) -> ast.ParamDecl:
        return ast.ParamDecl(span=span_of(c), name=self._ident(c[1], declared="param"), value=c[2])

    def set_decl(self, meta: Meta, c: list[Any]) -> ast.SetDecl:
        return ast.SetDecl(span=span_of(c), key=self._ident(c[1]), value=c[2])

    def data_decl(self, meta: Meta, c: list[Any]) -> ast.DataDecl:
        name = self._ident(c[1], declared="data") if c[1] is not None else None
        return ast.DataDecl(span=span_of(c), name=name, call=c[2])

    def model_decl(self, meta: Meta, c: list[Any]) -> ast.ModelDecl:
        return ast.ModelDecl(
            span=span_of(c), name=self._ident(c[1], declared="model"), call=c[2], weights=c[3]
        )

    def from_path(self, meta: Meta, c: list[Token]) -> ast.String:
        return ast.String(span=token_span(c[0]), value=decode_string(c[0]))

    # ---- the recipe ------------------------------------------------------------------------
    def pipeline(self, meta: Meta, c: list[Any]) -> list[Any]:
        return list(c)

    def start(self, meta: Meta, c: list[Any]) -> ast.Recipe:
        decls = [x for x in c if not isinstance(x, list)]
        stages = next((x for x in c if isinstance(x, list)), [])
        return ast.Recipe(span=span_of(c), decls=decls, stages=stages)


def build_ast(tree: Tree[Token], diagnostics: list[Diagnostic]) -> ast.Recipe:
    return AstBuilder(diagnostics).transform(tree)
