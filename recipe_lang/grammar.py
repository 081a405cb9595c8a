"""The recipe grammar (``kdr.lark``) and the keyword tables derived from its terminals.

Nothing here is typed twice: the reserved words are the grammar's alphabetic string terminals,
the stage and declaration keywords are the FIRST sets of its ``stage`` and ``_decl`` rules, and
the statement starts used to resynchronise after a syntax error are the FIRST set of its
``_resume_item`` rule. A new stage keyword in ``kdr.lark`` reaches the parser's recovery, the
friendly messages, the AST builder and the fuzzer with no other edit.

>>> sorted(STAGE_TOKENS)[:3]
['DISTILL', 'EVALUATE', 'EXPORT']
>>> "then" in KEYWORDS and "channels" not in KEYWORDS
True
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from lark import Lark
from lark.grammar import Rule

GRAMMAR_FILE = Path(__file__).parent / "kdr.lark"


@cache
def grammar() -> Lark:
    """The LALR parser of ``kdr.lark`` (built once per process, its tables cached on disk)."""
    options = {
        "parser": "lalr",
        "lexer": "contextual",
        "propagate_positions": False,
        "maybe_placeholders": True,
        "start": ["start", "resume", "param_value"],
    }
    # Building the LALR tables is most of a cold `kdr check`; lark can cache them. The cache is
    # a pickle, so it lives in the user's own cache directory (never a shared temp directory),
    # keyed by the grammar's content; any problem with it falls back to building the tables.
    cache = _cache_path()
    if cache is not None:
        try:
            return Lark.open(GRAMMAR_FILE.name, rel_to=__file__, cache=str(cache), **options)
        except Exception:  # an unreadable or stale cache: build without it
            pass
    return Lark.open(GRAMMAR_FILE.name, rel_to=__file__, **options)


def _cache_path() -> Path | None:
    if os.environ.get("KDR_NO_GRAMMAR_CACHE"):
        return None
    import hashlib

    import lark

    text = GRAMMAR_FILE.read_bytes()
    key = hashlib.sha256(text + lark.__version__.encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kdr"
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return base / f"grammar-{key}.lark.cache"


# ---- tables derived from the grammar --------------------------------------------------------


def string_terminals(parser: Lark) -> dict[str, str]:
    """Terminal name -> its literal text, for every terminal that is a fixed string."""
    return {t.name: str(t.pattern.value) for t in parser.terminals if t.pattern.type == "str"}


def first_sets(rules: Iterable[Rule]) -> dict[str, frozenset[str]]:
    """FIRST set (the terminals a rule can begin with) of every rule, by a fixpoint."""
    rules = list(rules)
    origins = {r.origin.name for r in rules}
    first: dict[str, set[str]] = {name: set() for name in origins}
    nullable: set[str] = set()
    changed = True
    while changed:
        changed = False
        for rule in rules:
            head = str(rule.origin.name)
            before = (len(first[head]), head in nullable)
            for sym in rule.expansion:
                name = str(sym.name)
                if name not in origins:  # a terminal
                    first[head].add(name)
                    break
                first[head] |= first[name]
                if name not in nullable:
                    break
            else:
                nullable.add(head)
            changed |= before != (len(first[head]), head in nullable)
    return {name: frozenset(tokens) for name, tokens in first.items()}


_WORD = re.compile(r"^[a-z_]+$")

_LITERALS = string_terminals(grammar())
_FIRST = first_sets(grammar().rules)

#: Terminal name -> keyword text (`THEN` -> `then`), for the grammar's alphabetic terminals.
KEYWORD_TOKENS: dict[str, str] = {
    name: text for name, text in sorted(_LITERALS.items()) if _WORD.match(text)
}
#: Terminal name -> punctuation text (`LPAR` -> `(`).
PUNCTUATION_TOKENS: dict[str, str] = {
    name: text for name, text in sorted(_LITERALS.items()) if name not in KEYWORD_TOKENS
}
#: Reserved words: the grammar's structural keywords. Option words (channels, static, ...) are
#: plain NAMEs in the grammar and are not reserved.
KEYWORDS: frozenset[str] = frozenset(KEYWORD_TOKENS.values())
#: Keywords that open a stage (`train`, `prune`, ...): the FIRST set of the `stage` rule.
STAGE_TOKENS: frozenset[str] = _FIRST["stage"]
#: Keywords that open a declaration (`model`, `param`, ...): the FIRST set of `_decl`.
DECL_TOKENS: frozenset[str] = _FIRST["_decl"]
#: Tokens that start a statement (declarations, stages and `then`): where parsing resumes
#: after a syntax error. The FIRST set of the grammar's `_resume_item`.
STATEMENT_TOKENS: frozenset[str] = _FIRST["_resume_item"]
#: The keyword texts of :data:`STATEMENT_TOKENS` (`then`, `train`, `model`, ...).
STATEMENT_WORDS: frozenset[str] = frozenset(
    KEYWORD_TOKENS[t] for t in STATEMENT_TOKENS if t in KEYWORD_TOKENS
)
#: A line that opens with a statement keyword (the parser resynchronises at the next one).
STATEMENT_START = re.compile(
    r"^[ \t]*(" + "|".join(sorted(STATEMENT_WORDS)) + r")\b",
    re.MULTILINE,
)

__all__ = [
    "DECL_TOKENS",
    "KEYWORDS",
    "KEYWORD_TOKENS",
    "PUNCTUATION_TOKENS",
    "STAGE_TOKENS",
    "STATEMENT_START",
    "STATEMENT_TOKENS",
    "STATEMENT_WORDS",
    "first_sets",
    "grammar",
    "string_terminals",
]
