"""Syntax errors in words: expected tokens named for people, and common mistakes recognised.

Common mistakes are recognised the way lark's own grammar loader does it: a table of
malformed examples, matched against the failing parser state with
``UnexpectedInput.match_examples``. Every entry of :data:`MISTAKES` is exercised by a test.
"""

from __future__ import annotations

import difflib
from functools import cache

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from recipe_lang.diagnostics import Diagnostic, Note, Span, error
from recipe_lang.grammar import (
    DECL_TOKENS,
    KEYWORD_TOKENS,
    PUNCTUATION_TOKENS,
    STAGE_TOKENS,
    grammar,
)

#: What each terminal means, in words: every fixed-string terminal of the grammar is itself in
#: backquotes (`then`, `(`), and these are described.
_DESCRIBED: dict[str, str] = {
    "NAME": "a name",
    "DOTTED_NAME": "a name",
    "NUMBER": "a number",
    "PERCENT": "a percentage like `50%`",
    "NM_PATTERN": "an N:M pattern like `2:4`",
    "SIZE": "a size like `2.5M`",
    "REF": "a `$param` reference",
    "STRING": 'a string like "path"',
    "GLOB": "a module pattern like `layer3.*`",
    "FOR": 'a duration like "for 3 epochs"',
    "$END": "the end of the recipe",
}
TOKEN_WORDS: dict[str, str] = {
    **{name: f"`{text}`" for name, text in {**KEYWORD_TOKENS, **PUNCTUATION_TOKENS}.items()},
    **_DESCRIBED,
}

#: label -> (message, help, malformed examples). The label is what tests refer to.
MISTAKES: dict[str, tuple[str, str, list[str]]] = {
    "missing-then": (
        "missing `then` between two stages",
        "join stages with `then`, e.g. `train for 3 epochs then evaluate`",
        [
            "train for 3 epochs distill from t",
            "train for 3 epochs evaluate",
            "distill from t for 2 epochs prune 50%",
            "prune 50% channels quantize int8",
            'evaluate export onnx "m.onnx"',
            "snapshot as s evaluate",
            "quantize int8 evaluate",
            "train for 3 epochs with mixup 0.2 prune 50%",
        ],
    ),
    "missing-duration": (
        'missing duration: say how long to train, like "for 3 epochs"',
        "add a duration such as `for 3 epochs` or `for 500 steps`",
        [
            "train",
            "train student",
            "train then evaluate",
            "train student then evaluate",
            "train with cutmix 1.0",
            "finetune student with lr 0.01",
            "quantize int8 qat with distill from t",
            "quantize int8 qat with distill from t then evaluate",
        ],
    ),
    "duration-count": (
        'a duration needs a count and a unit, like "for 3 epochs"',
        "write `for 3 epochs` or `for 500 steps`",
        ["train for epochs", "train for 3", "train for 3 then evaluate", "distill from t for"],
    ),
    "missing-percent": (
        "`prune` needs an amount: a percentage like `50%` or a budget like `to 2.5M params`",
        "write `prune 50%` or `prune to 40% macs`",
        ["prune", "prune then evaluate", "prune student channels", "prune student then evaluate"],
    ),
    "gradual-duration": (
        'a gradual prune needs its duration: "gradually over 3 epochs"',
        "write `prune 90% weights gradually over 3 epochs` (or `over 500 steps`)",
        [
            "prune 50% gradually",
            "prune 50% gradually then evaluate",
            "prune 50% weights gradually for 3 epochs",
            "prune 50% gradually over",
            "prune 50% gradually over 3",
            "prune 50% gradually over 3 then evaluate",
        ],
    ),
    "missing-teacher": (
        "`distill` needs a teacher: `distill from TEACHER`",
        "write `distill student from teacher for 3 epochs`",
        ["distill", "distill student", "distill student for 3 epochs", "distill then evaluate"],
    ),
    "missing-equals": (
        "a declaration needs `=` between its name and its value",
        "write e.g. `model student = convnet(width=16)`",
        ["model student convnet()", "param epochs 3", "set seed 0", "data mnist10k()"],
    ),
    "declaration-after-stage": (
        "declarations must come before the pipeline",
        "move this declaration above the first stage",
        [
            "train for 3 epochs model s = convnet()",
            "evaluate param x = 3",
            "evaluate set seed = 1",
            "train for 1 epoch data = mnist10k()",
        ],
    ),
    "unclosed-call": (
        "unclosed `(`: a call's arguments end with `)`",
        "close the argument list with `)`",
        ["model s = convnet(width=16", "data = mnist10k(batch_size=64 model t = resnet18()"],
    ),
    "unclosed-repeat": (
        "unclosed `{`: a `repeat` block ends with `}`",
        "close the block with `}`",
        ["repeat 2 { prune 10%", "repeat 2 { prune 10% then distill from t for 1 epoch"],
    ),
    "missing-comma": (
        "missing `,` between two modifiers",
        "separate the modifiers of a `with` clause with commas: `with lr 0.01, ema 0.999`",
        [
            "train for 3 epochs with cutmix 1.0 label_smoothing 0.1",
            "train for 3 epochs with warmup 2 epochs ema 0.9",
            "train for 3 epochs with keep best ema 0.9",
            "train for 3 epochs with keep best by loss ema 0.9",
            "train for 3 epochs with optimizer sgd(lr=0.1) ema 0.9",
            "train for 3 epochs with lr 0.1 schedule cosine_restarts(period=1)",
            "prune 50% with lr 0.1 mixup 0.2 for 1 epoch",
        ],
    ),
    "list-of-numbers": (
        "a list holds numbers separated by commas, like `[25, 45]`",
        "write the numbers (or `$params`) between `[` and `]`, separated by commas",
        [
            "set s = [a]",
            "set s = [1, a]",
            'set s = ["a"]',
            "set s = [1 2]",
            "train for 2 epochs with schedule multistep(milestones=[x])",
        ],
    ),
    "missing-export-path": (
        'an export needs a format and a path: `export onnx "out/model.onnx"`',
        'write `export student onnx "out/student.onnx"`',
        ["export onnx", "export student onnx", "export onnx then evaluate", "export"],
    ),
}


def _words(expected: set[str]) -> str:
    names: list[str] = []
    if expected & STAGE_TOKENS:
        names.append("a stage (train, distill, prune, ...)")
    if expected & DECL_TOKENS:
        names.append("a declaration (model, data, param, set, recipe)")
    for tok in sorted(expected - STAGE_TOKENS - DECL_TOKENS):
        word = TOKEN_WORDS.get(tok)
        if word and word not in names:
            names.append(word)
    if not names:
        return "something else"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _found(exc: UnexpectedToken) -> str:
    if exc.token.type == "$END":
        return "the end of the recipe"
    return f"`{exc.token}`"


def _state_of(exc: UnexpectedInput) -> object:
    """The parser state an error happened in (the LALR state on top of the stack)."""
    state = getattr(exc, "state", None)
    return getattr(state, "position", state)


@cache
def _example_states(start: str) -> list[tuple[str, object, str | None]]:
    """(label, state, token type) of every malformed example, parsed once per start rule."""
    out: list[tuple[str, object, str | None]] = []
    for label, (_, _, examples) in MISTAKES.items():
        for example in examples:
            try:
                grammar().parse(example, start=start)
            except UnexpectedInput as exc:
                token = getattr(exc, "token", None)
                out.append((label, _state_of(exc), getattr(token, "type", None)))
    return out


def match_mistake(exc: UnexpectedInput, start: str = "start") -> str | None:
    """The label of the :data:`MISTAKES` entry that ``exc`` matches, if any.

    Like ``UnexpectedInput.match_examples``, but it compares only the LALR state on top of the
    stack, not the stack depth, so an example written without declarations still matches the
    same mistake in a recipe that has some. An exact token-type match wins over a state match.
    """
    state = _state_of(exc)
    if state is None:
        return None
    token_type = getattr(getattr(exc, "token", None), "type", None)
    by_state = [(label, t) for label, s, t in _example_states(start) if s == state]
    exact = next((label for label, t in by_state if t == token_type), None)
    return exact or (by_state[0][0] if by_state else None)


def _misspelt_keyword(exc: UnexpectedToken, expected: set[str]) -> Note | None:
    """``distil`` where a stage or declaration may start: "did you mean `distill`?"."""
    if exc.token.type != "NAME":
        return None
    words = [
        KEYWORD_TOKENS[t] for t in expected & (STAGE_TOKENS | DECL_TOKENS) if t in KEYWORD_TOKENS
    ]
    close = difflib.get_close_matches(str(exc.token), words, n=1, cutoff=0.7)
    return Note(kind="help", message=f"did you mean `{close[0]}`?") if close else None


def describe_syntax_error(
    exc: UnexpectedInput, source: str, span: Span, start: str = "start"
) -> Diagnostic:
    """Turn a lark exception into a KDR001 diagnostic with words, not token ids."""
    if isinstance(exc, UnexpectedCharacters):
        line = source.splitlines()[span.line - 1] if source.splitlines() else ""
        pos = exc.pos_in_stream or 0
        char = line[span.column - 1] if 0 < span.column <= len(line) else source[pos : pos + 1]
        if char == '"':
            return error(
                "KDR001",
                "unterminated string",
                Span(
                    line=span.line, column=span.column, end_line=span.line, end_column=len(line) + 1
                ),
                Note(kind="help", message='close the string with `"` on the same line'),
            )
        if char == "%":
            help_text = "a `%` follows its number directly, as in `50%`"
        else:
            help_text = "remove it; names are letters, digits and `_`, comments start with `#`"
        return error(
            "KDR001", f"unexpected character `{char}`", span, Note(kind="help", message=help_text)
        )
    label = match_mistake(exc, start)
    if label is not None:
        message, help_text, _ = MISTAKES[label]
        return error("KDR001", message, span, Note(kind="help", message=help_text))
    if isinstance(exc, UnexpectedToken):
        expected = set(exc.accepts or exc.expected)
        found = _found(exc)
        # The same two mistakes in states the table does not list (deeper in a pipeline).
        for label, applies in (
            ("missing-then", exc.token.type in STAGE_TOKENS and "THEN" in expected),
            ("declaration-after-stage", exc.token.type in DECL_TOKENS),
        ):
            if applies:
                message, help_text, _ = MISTAKES[label]
                return error("KDR001", message, span, Note(kind="help", message=help_text))
        if exc.token.type in STAGE_TOKENS | DECL_TOKENS and "NAME" in expected:
            return error(
                "KDR001",
                f"`{exc.token}` is a keyword; it cannot be used as a name here",
                span,
                Note(kind="help", message=f"expected {_words(expected)}"),
            )
        notes = [n for n in (_misspelt_keyword(exc, expected),) if n]
        return error("KDR001", f"expected {_words(expected)}, found {found}", span, *notes)
    if isinstance(exc, UnexpectedEOF):
        return error(
            "KDR001", f"unexpected end of the recipe; expected {_words(set(exc.expected))}", span
        )
    return error("KDR001", "syntax error", span)
