"""Builds stage nodes (train, distill, prune, ...) and their parts (durations, modifiers, scopes).

Option words are sorted into their canonical order here (:mod:`recipe_lang.words`), so that
two spellings of one stage build equal ASTs and the printer gives one layout.
"""

from __future__ import annotations

import re
import typing
from typing import Any

from lark import Token
from lark.tree import Meta

from recipe_lang import ast
from recipe_lang.build_values import ValueBuilder
from recipe_lang.diagnostics import Span
from recipe_lang.friendly import MISTAKES
from recipe_lang.grammar import KEYWORDS
from recipe_lang.spans import decode_string, span_of, token_span
from recipe_lang.words import OPTION_ORDER, PRECISION, WORD_ORDER


def _sorted_words(words: list[ast.Ident]) -> list[ast.Ident]:
    return sorted(words, key=lambda w: WORD_ORDER.get(w.value, len(WORD_ORDER)))


def _sorted_options(options: list[ast.Option]) -> list[ast.Option]:
    return sorted(options, key=lambda o: OPTION_ORDER.get(o.name.value, len(OPTION_ORDER)))


#: Stage nodes whose layout is their ``SYNTAX`` (built and printed with no code of their own).
SYNTAX_STAGES: dict[str, type[ast.StageBase]] = {
    cls.model_fields["kind"].default: cls
    for cls in typing.get_args(typing.get_args(ast.Stage)[0])
    if cls.SYNTAX
}


class StageBuilder(ValueBuilder):
    """Stages and stage parts, on top of values."""

    def syntax_stage(self, kind: str, c: list[Any]) -> ast.StageBase:
        """A stage from its ``SYNTAX``: the rule's children after the keyword fill the
        placeholders in order (an optional ``[NAME]`` child is None when absent)."""
        cls = SYNTAX_STAGES[kind]
        assert cls.SYNTAX is not None
        fields: dict[str, Any] = {}
        for field, tok in zip(re.findall(r"{(\w+)}", cls.SYNTAX), c[1:], strict=True):
            if field == "subject":
                fields[field] = self._subject(tok)
            elif tok is not None and tok.type == "STRING":
                fields[field] = ast.String(span=token_span(tok), value=decode_string(tok))
            elif tok is not None:
                fields[field] = self._ident(tok, declared=kind)
        return cls(span=span_of(c), **fields)

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
        unit = self._ident(c[2]) if c[2] is not None else None
        return ast.ValueModifier(span=span_of(c), name=self._ident(c[0]), value=c[1], unit=unit)

    def call_mod(self, meta: Meta, c: list[Any]) -> ast.CallModifier:
        return ast.CallModifier(span=span_of(c), name=self._ident(c[0]), call=c[1])

    def word_mod(self, meta: Meta, c: list[Any]) -> ast.WordModifier:
        by = self._ident(c[2]) if c[2] is not None else None
        return ast.WordModifier(
            span=span_of(c), name=self._ident(c[0]), word=self._ident(c[1]), by=by
        )

    def train_mods(self, meta: Meta, c: list[Any]) -> tuple[list[Any], None]:
        return (list(c), None)

    def recovery(self, meta: Meta, c: list[Any]) -> tuple[list[Any], ast.Duration]:
        return (list(c[:-1]), c[-1])

    def prune_training(
        self, meta: Meta, c: list[Any]
    ) -> tuple[str, list[Any], ast.Duration | None, Span]:
        mods = [m for m in c if isinstance(m, ast.Node) and not isinstance(m, ast.Duration)]
        duration = c[-1] if isinstance(c[-1], ast.Duration) else None
        return ("training", mods, duration, span_of([x for x in c if x is not None]))

    def nm_pattern(self, meta: Meta, c: list[Token]) -> ast.NMPattern:
        n, m = str(c[0]).split(":")
        return ast.NMPattern(span=token_span(c[0]), n=int(n), m=int(m))

    def gradual_from(self, meta: Meta, c: list[Any]) -> tuple[str, Any]:
        return ("start", c[0])

    def gradual_every(self, meta: Meta, c: list[Any]) -> tuple[str, Any]:
        return ("every", ast.Duration(span=span_of(c), count=c[0], unit=self._ident(c[1])))

    def gradual_curve(self, meta: Meta, c: list[Token]) -> tuple[str, Any]:
        return ("curve", self._ident(c[0]))

    def gradual(self, meta: Meta, c: list[Any]) -> ast.Gradual:
        over = ast.Duration(span=span_of(c[1:3]), count=c[1], unit=self._ident(c[2]))
        options: dict[str, Any] = {}
        for key, value in c[3:]:
            if key in options:
                word = {"start": "from", "every": "every", "curve": "a curve"}[key]
                self._complain(
                    f"{word if key == 'curve' else f'`{word}`'} is given twice in one `prune`",
                    value.span,
                    "give each option of a gradual prune once",
                )
            options[key] = value
        return ast.Gradual(span=span_of(c), over=over, **options)

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
            elif isinstance(item, ast.Gradual):
                fields["gradual"] = item
            elif isinstance(item, tuple):  # ("training", modifiers, duration, span)
                _, fields["modifiers"], fields["duration"], where = item
                if fields["duration"] is None and fields.get("gradual") is None:
                    self._complain(
                        MISTAKES["missing-duration"][0],
                        where,
                        "add a duration such as `for 1 epoch` after the modifiers, or prune "
                        "`gradually over N epochs` (it then trains for that long)",
                    )
        fields["words"] = _sorted_words(fields["words"])
        if isinstance(amount, ast.Budget):
            fields["budget"] = amount
        elif isinstance(amount, ast.NMPattern):
            fields["pattern"] = amount
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
        if not PRECISION.match(names[0].value) and len(names) > 1:
            subject, names = self._subject(c[1]), names[1:]
        elif not PRECISION.match(names[0].value):
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
