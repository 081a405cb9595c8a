"""The keyword tables are the grammar's: a new keyword in kdr.lark reaches every table unedited."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from lark import Lark

from recipe_lang import friendly, grammar
from recipe_lang.grammar import (
    DECL_TOKENS,
    KEYWORD_TOKENS,
    KEYWORDS,
    STAGE_TOKENS,
    STATEMENT_START,
    STATEMENT_TOKENS,
    STATEMENT_WORDS,
    first_sets,
    string_terminals,
)
from recipe_lang.parser import parse

ROOT = Path(__file__).resolve().parents[2]
LARK_TEXT = grammar.GRAMMAR_FILE.read_text(encoding="utf-8")


def _rule_body(name: str) -> str:
    """The alternatives of rule ``name`` in kdr.lark, up to the next rule."""
    m = re.search(rf"^\??{name}:(.*?)(?=^\S)", LARK_TEXT, re.M | re.S)
    assert m, name
    return m.group(1)


def _first_word(rule: str) -> list[str]:
    """The keyword(s) a rule's text begins with: `(TRAIN | FINETUNE)`, `PRUNE`, ..."""
    body = _rule_body(rule).strip()
    head = body[1 : body.index(")")] if body.startswith("(") else body.split()[0]
    return [t.strip() for t in head.split("|")]


def test_keywords_are_every_alphabetic_literal_of_the_grammar():
    literals = set(re.findall(r'"([a-z_]+)"', LARK_TEXT))
    assert literals == KEYWORDS
    # Option words stay names: a typo in one is KDR103 from the compiler, not a syntax error.
    assert {"channels", "static", "temperature", "epochs"}.isdisjoint(KEYWORDS)


def test_every_stage_rules_first_keyword_is_a_stage_token():
    stages = [s.strip().split()[0] for s in _rule_body("stage").split("|")]
    assert len(stages) >= 9
    expected = {tok for rule in stages for tok in _first_word(rule)}
    assert expected == STAGE_TOKENS
    assert {"TRAIN", "FINETUNE", "PRUNE", "REPEAT"} <= STAGE_TOKENS


def test_every_declaration_rules_first_keyword_is_a_decl_token():
    decls = [s.strip() for s in _rule_body("_decl").split("|")]
    expected = {tok for rule in decls for tok in _first_word(rule)}
    assert expected == DECL_TOKENS == {"RECIPE", "PARAM", "SET", "DATA", "MODEL"}


def test_statement_starts_are_declarations_stages_and_then():
    assert STAGE_TOKENS | DECL_TOKENS | {"THEN"} == STATEMENT_TOKENS
    assert {KEYWORD_TOKENS[t] for t in STATEMENT_TOKENS} == STATEMENT_WORDS
    for word in STATEMENT_WORDS:
        assert STATEMENT_START.match(f"  {word} x"), word
    assert not STATEMENT_START.match("settings = 1")
    assert not STATEMENT_START.match("with lr 0.1")


def test_first_sets_follow_nullable_rules():
    parser = Lark(
        """
        start: opt "b" | "c"
        opt: "a"
           | -> nothing
        """,
        parser="lalr",
    )
    first = first_sets(parser.rules)
    assert first["start"] == {"A", "B", "C"}
    assert string_terminals(parser) == {"A": "a", "B": "b", "C": "c"}


def test_a_new_stage_keyword_flows_into_every_table(tmp_path, monkeypatch):
    """Add a stage to a copy of the grammar: the derived tables pick it up with no other edit."""
    text = LARK_TEXT.replace("| repeat\n", "| repeat | shrink\n").replace(
        "repeat: REPEAT", 'shrink: "shrink" NAME\nrepeat: REPEAT'
    )
    assert "shrink" in text
    (tmp_path / "kdr.lark").write_text(text, encoding="utf-8")
    (tmp_path / "grammar.py").write_text(
        Path(grammar.__file__).read_text(encoding="utf-8"), encoding="utf-8"
    )
    monkeypatch.setenv("KDR_NO_GRAMMAR_CACHE", "1")
    spec = importlib.util.spec_from_file_location("kdr_grammar_copy", tmp_path / "grammar.py")
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = copy
    try:
        spec.loader.exec_module(copy)
    finally:
        del sys.modules[spec.name]
    assert "SHRINK" in copy.STAGE_TOKENS and "SHRINK" in copy.STATEMENT_TOKENS
    assert "shrink" in copy.KEYWORDS and copy.STATEMENT_START.match("shrink x")


def test_friendly_and_fuzzer_read_the_derived_tables():
    assert friendly.STAGE_TOKENS is STAGE_TOKENS and friendly.DECL_TOKENS is DECL_TOKENS
    for name, text in KEYWORD_TOKENS.items():
        assert friendly.TOKEN_WORDS[name] in (f"`{text}`", 'a duration like "for 3 epochs"')
    spec = importlib.util.spec_from_file_location("kdr_bench_fuzz_kw", ROOT / "bench" / "fuzz.py")
    assert spec is not None and spec.loader is not None
    fuzz = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fuzz
    try:
        spec.loader.exec_module(fuzz)
    finally:
        del sys.modules[spec.name]
    assert set(fuzz.KEYWORDS) == KEYWORDS


def test_recovery_resumes_at_every_statement_keyword():
    # A broken line, then each statement keyword on the next line: recovery resynchronises
    # there, so the second error (if any) is reported on line 2 or later, never swallowed.
    for word in sorted(STATEMENT_WORDS - {"then"}):
        result = parse(f"train for 3 epochs )\n{word} (\n")
        lines = [d.span.line for d in result.diagnostics if d.span is not None]
        assert lines[0] == 1 and len(lines) >= 2 and lines[1] == 2, (word, lines)
