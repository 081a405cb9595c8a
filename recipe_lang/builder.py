"""Builds the AST from Lark's parse tree, with spans, and checks what the grammar leaves open.

The grammar is deliberately permissive where a precise message helps more than a syntax error
(a declared name that spells a keyword, a duration given twice, a missing precision after
``quantize student``); those become KDR001 diagnostics collected here, not exceptions.
"""

from __future__ import annotations

import math
import re
from typing import Any

from lark import Token, Tree
from lark.tree import Meta

from recipe_lang import ast
from recipe_lang.diagnostics import Diagnostic, Note, Span, error

#: Reserved words: structural keywords of the grammar. Option words are not reserved.
KEYWORDS = frozenset(
    [
        "recipe",
        "param",
        "set",
        "data",
        "model",
        "from",
        "as",
        "with",
        "then",
        "for",
        "in",
        "except",
        "to",
        "by",
        "repeat",
        "train",
        "finetune",
        "distill",
        "snapshot",
        "prune",
        "replace",
        "quantize",
        "evaluate",
        "export",
        "calibrate",
    ]
)

_PRECISION = re.compile(r"^(u?int|fp|bf|float)\d+$")

#: Canonical order of option words and stage options; unknown ones follow in source order.
WORD_ORDER = {
    w: i
    for i, w in enumerate(
        [
            "channels",
            "weights",
            "local",
            "global",
            "static",
            "dynamic",
            "qat",
            "per_channel",
            "per_tensor",
        ]
    )
}
OPTION_ORDER = {"temperature": 0, "alpha": 1}
_SIZE_SUFFIX = {"k": 1e3, "m": 1e6, "g": 1e9}


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
    body = str(tok)[1:-1]
    return re.sub(
        r"\\(.)",
        lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)),
        body,
    )


def _sorted_words(words: list[ast.Ident]) -> list[ast.Ident]:
    return sorted(words, key=lambda w: WORD_ORDER.get(w.value, len(WORD_ORDER)))


def _sorted_options(options: list[ast.Option]) -> list[ast.Option]:
    return sorted(options, key=lambda o: OPTION_ORDER.get(o.name.value, len(OPTION_ORDER)))


class AstBuilder:
    """Turns a Lark tree into AST nodes, bottom-up: ``rule(meta, children)`` per tree node.

    A plain walker rather than ``lark.Transformer`` with ``v_args(meta=True)``: lark wraps every
    callback call, which made building the AST cost more than parsing (see bench/compile.py).
    """

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        self._methods: dict[str, Any] = {}

    def transform(self, tree: Tree[Token]) -> Any:
        """Build the node for ``tree`` (a subtree with no method stays a ``Tree``)."""
        children = [self.transform(c) if isinstance(c, Tree) else c for c in tree.children]
        name = str(tree.data)
        method = self._methods.get(name)
        if method is None:
            method = getattr(self, name, None) if not name.startswith("_") else None
            self._methods[name] = method or False
        if not method:
            return Tree(tree.data, children, tree.meta)
        return method(tree.meta, children)

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

    # ---- stage parts -----------------------------------------------------------------------
    def duration(self, meta: Meta, c: list[Any]) -> ast.Duration:
        return ast.Duration(span=span_of(c), count=c[1], unit=self._ident(c[2]))

    def stage_option(self, meta: Meta, c: list[Any]) -> ast.Option:
        return ast.Option(span=span_of(c), name=self._ident(c[0]), value=c[1])

    def teacher_name(self, meta: Meta, c: list[Token]) -> ast.TeacherName:
        teacher = ast.TeacherName(span=token_span(c[0]), name=str(c[0]))
        if teacher.name in KEYWORDS:
            self._complain(
                f"`{teacher.name}` is a keyword, not a teacher",
                teacher.span,
                "name a model, a snapshot or a constructor such as `resnet50`",
            )
        return teacher

    def distill_mod(self, meta: Meta, c: list[Any]) -> ast.DistillModifier:
        return ast.DistillModifier(span=span_of(c), teacher=c[1], options=_sorted_options(c[2:]))

    def value_mod(self, meta: Meta, c: list[Any]) -> ast.ValueModifier:
        return ast.ValueModifier(span=span_of(c), name=self._ident(c[0]), value=c[1])

    def train_mods(self, meta: Meta, c: list[Any]) -> tuple[list[Any], None]:
        return (list(c), None)

    def recovery(self, meta: Meta, c: list[Any]) -> tuple[list[Any], ast.Duration]:
        return (list(c[:-1]), c[-1])

    def budget(self, meta: Meta, c: list[Any]) -> ast.Budget:
        return ast.Budget(span=span_of(c), value=c[1], unit=self._ident(c[2]))

    def prune_word(self, meta: Meta, c: list[Token]) -> Token:
        return c[0]

    def criterion(self, meta: Meta, c: list[Token]) -> tuple[str, ast.Ident]:
        return ("criterion", self._ident(c[0]))

    def scope_glob(self, meta: Meta, c: list[Token]) -> ast.Scope:
        tok = c[0]
        if tok.type == "STRING":
            return ast.Scope(span=token_span(tok), pattern=decode_string(tok), quoted=True)
        return ast.Scope(span=token_span(tok), pattern=str(tok))

    def scope_in(self, meta: Meta, c: list[ast.Scope]) -> tuple[str, list[ast.Scope]]:
        return ("include", list(c))

    def scope_except(self, meta: Meta, c: list[ast.Scope]) -> tuple[str, list[ast.Scope]]:
        return ("exclude", list(c))

    def replacement_name(self, meta: Meta, c: list[Token]) -> ast.Ident:
        return self._ident(c[0])

    def calibrate(self, meta: Meta, c: list[Any]) -> ast.Calibrate:
        unit = self._ident(c[2]) if c[2] is not None else None
        return ast.Calibrate(span=span_of(c), count=c[1], unit=unit)

    # ---- stages ----------------------------------------------------------------------------
    def train(self, meta: Meta, c: list[Any]) -> ast.TrainStage:
        verb, subject, duration, mods = c
        return ast.TrainStage(
            span=span_of(c),
            verb=str(verb),
            subject=self._subject(subject),
            duration=duration,
            modifiers=mods[0] if mods else [],
        )

    def distill(self, meta: Meta, c: list[Any]) -> ast.DistillStage:
        _, subject, teacher, *rest = c
        options = [x for x in rest if isinstance(x, ast.Option)]
        duration = next((x for x in rest if isinstance(x, ast.Duration)), None)
        mods = next((x for x in rest if isinstance(x, tuple)), None)
        return ast.DistillStage(
            span=span_of(c),
            subject=self._subject(subject),
            teacher=teacher,
            options=_sorted_options(options),
            duration=duration,
            modifiers=mods[0] if mods else [],
        )

    def snapshot(self, meta: Meta, c: list[Any]) -> ast.SnapshotStage:
        _, subject, name = c
        return ast.SnapshotStage(
            span=span_of(c),
            subject=self._subject(subject),
            name=self._ident(name, declared="snapshot"),
        )

    def prune(self, meta: Meta, c: list[Any]) -> ast.PruneStage:
        _, subject, amount, *rest = c
        fields: dict[str, Any] = {"words": [], "include": [], "exclude": []}
        for item in rest:
            if isinstance(item, Token):
                fields["words"].append(self._ident(item))
            elif isinstance(item, tuple) and item[0] in ("criterion", "include", "exclude"):
                key, value = item
                if fields.get(key):
                    where = value.span if isinstance(value, ast.Node) else value[0].span
                    what = (
                        "`by`"
                        if key == "criterion"
                        else f"`{'in' if key == 'include' else 'except'}`"
                    )
                    self._complain(
                        f"{what} is given twice in one `prune`", where, "merge them into one list"
                    )
                fields[key] = value
            elif isinstance(item, tuple):  # recovery: (modifiers, duration)
                fields["modifiers"], fields["duration"] = item
        fields["words"] = _sorted_words(fields["words"])
        if isinstance(amount, ast.Budget):
            fields["budget"] = amount
        else:
            fields["amount"] = amount
        return ast.PruneStage(
            span=span_of(c),
            subject=self._subject(subject),
            **fields,
        )

    def replace(self, meta: Meta, c: list[Any]) -> ast.ReplaceStage:
        _, first, second, scope_in, scope_except, replacement = c
        subject, target = (first, second) if second is not None else (None, first)
        return ast.ReplaceStage(
            span=span_of(c),
            subject=self._subject(subject),
            target=self._ident(target),
            include=scope_in[1] if scope_in else [],
            exclude=scope_except[1] if scope_except else [],
            replacement=replacement,
        )

    def quantize(self, meta: Meta, c: list[Any]) -> ast.QuantizeStage:
        names = [self._ident(t) for t in c[1:] if isinstance(t, Token)]
        calibrate = next((x for x in c if isinstance(x, ast.Calibrate)), None)
        recovery = next((x for x in c if isinstance(x, tuple)), None)
        subject = None
        if not _PRECISION.match(names[0].value) and len(names) > 1:
            subject, names = self._subject(c[1]), names[1:]
        elif not _PRECISION.match(names[0].value):
            self._complain(
                f"expected a precision like `int8` after `quantize {names[0].value}`",
                names[0].span,
                f"write `quantize {names[0].value} int8`",
            )
            subject = names[0]
            names = [ast.Ident(span=names[0].span, value="int8")]
        return ast.QuantizeStage(
            span=span_of(c),
            subject=subject,
            precision=names[0],
            words=_sorted_words(names[1:]),
            calibrate=calibrate,
            modifiers=recovery[0] if recovery else [],
            duration=recovery[1] if recovery else None,
        )

    def evaluate(self, meta: Meta, c: list[Any]) -> ast.EvaluateStage:
        return ast.EvaluateStage(span=span_of(c), subject=self._subject(c[1]))

    def export(self, meta: Meta, c: list[Any]) -> ast.ExportStage:
        _, first, second, path = c
        subject, fmt = (first, second) if second is not None else (None, first)
        return ast.ExportStage(
            span=span_of(c),
            subject=self._subject(subject),
            format=self._ident(fmt),
            path=ast.String(span=token_span(path), value=decode_string(path)),
        )

    def repeat(self, meta: Meta, c: list[Any]) -> ast.RepeatStage:
        return ast.RepeatStage(span=span_of(c), count=c[1], stages=c[2])

    def pipeline(self, meta: Meta, c: list[Any]) -> list[Any]:
        return list(c)

    def start(self, meta: Meta, c: list[Any]) -> ast.Recipe:
        decls = [x for x in c if not isinstance(x, list)]
        stages = next((x for x in c if isinstance(x, list)), [])
        return ast.Recipe(span=span_of(c), decls=decls, stages=stages)


def build_ast(tree: Tree[Token], diagnostics: list[Diagnostic]) -> ast.Recipe:
    return AstBuilder(diagnostics).transform(tree)
