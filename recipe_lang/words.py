"""The language's hand-written word tables: what the grammar cannot say, kept in one place.

Option words (``channels``, ``static``, ``per_channel``, ...) and stage options
(``temperature``, ``alpha``) are plain NAMEs in ``kdr.lark``, so that a typo gets "unknown
option, did you mean ..." from the compiler instead of a bare syntax error. Their *canonical
order* is a matter of style, not grammar: the AST builder sorts by it and the printer prints in
it, so ``fmt`` output is stable. The builder, the printer and the tests read these tables; the
compiler decides which words each stage accepts.
"""

from __future__ import annotations

import re

#: Prune option words printed before ``by`` (the others follow it).
PRUNE_KINDS: tuple[str, ...] = ("channels", "weights", "heads")
#: Option words in their canonical order; unknown ones follow in source order.
WORDS_IN_ORDER: tuple[str, ...] = (
    *PRUNE_KINDS,
    "local",
    "global",
    "static",
    "dynamic",
    "qat",
    "per_channel",
    "per_tensor",
)
WORD_ORDER: dict[str, int] = {w: i for i, w in enumerate(WORDS_IN_ORDER)}
#: Stage options (``distill from T temperature 4 alpha 0.9``) in their canonical order.
OPTION_ORDER: dict[str, int] = {w: i for i, w in enumerate(("temperature", "alpha"))}
#: What reads as a precision after ``quantize`` (``int8``, ``fp16``, ...): a name that does not
#: is the stage's subject (``quantize student int8``).
PRECISION = re.compile(r"^(u?int|fp|bf|float)\d+$")

__all__ = ["OPTION_ORDER", "PRECISION", "PRUNE_KINDS", "WORDS_IN_ORDER", "WORD_ORDER"]
