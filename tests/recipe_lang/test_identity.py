"""The printer: the identity corpus prints back unchanged, messy input becomes canonical,
``fmt`` is idempotent and never changes what a recipe means."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import example_recipes, identity_cases, messy_cases

from recipe_lang import ast
from recipe_lang.parser import parse
from recipe_lang.printer import format_recipe

IDENTITY = identity_cases()
MESSY = messy_cases()
EXAMPLES = example_recipes()


def fmt(source: str) -> str:
    result = parse(source)
    assert result.ok and result.recipe is not None, [d.message for d in result.diagnostics]
    return format_recipe(result.recipe)


def test_corpus_size() -> None:
    assert len(IDENTITY) >= 40
    assert len(MESSY) >= 10
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize(("case_id", "source"), IDENTITY, ids=[c for c, _ in IDENTITY])
def test_identity(case_id: str, source: str) -> None:
    assert fmt(source) == source


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_recipes_are_canonical(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert fmt(source) == source


@pytest.mark.parametrize(("case_id", "messy", "canonical"), MESSY, ids=[c for c, _, _ in MESSY])
def test_messy_becomes_canonical(case_id: str, messy: str, canonical: str) -> None:
    assert messy != canonical
    assert fmt(messy) == canonical
    assert fmt(canonical) == canonical


@pytest.mark.parametrize(
    "source", [s for _, s in IDENTITY] + [m for _, m, _ in MESSY], ids=lambda s: s[:30]
)
def test_fmt_keeps_meaning_and_is_idempotent(source: str) -> None:
    once = fmt(source)
    assert fmt(once) == once
    before, after = parse(source).recipe, parse(once).recipe
    assert before is not None and after is not None
    assert ast.same_tree(before, after, comments=False)
    # Comments survive too: same texts, same order.
    assert [c.text for c in after.comments] == [c.text for c in before.comments]


def test_same_tree_notices_a_change() -> None:
    a = parse("prune 50% channels").recipe
    b = parse("prune 40% channels").recipe
    c = parse("prune   50%\n channels").recipe
    assert a is not None and b is not None and c is not None
    assert not ast.same_tree(a, b)
    assert ast.same_tree(a, c)
    assert a != c  # spans differ


def test_prune_words_print_in_the_spec_order() -> None:
    # `local`/`global` come after `by` in the spec; the kind of pruning before it.
    assert fmt("prune 50% global channels by l1\n") == "prune 50% channels by l1 global\n"
    recipe = parse("prune 50% channels by l1 global").recipe
    assert recipe is not None
    stage = recipe.stages[0]
    assert isinstance(stage, ast.PruneStage)
    assert [w.value for w in stage.words] == ["channels", "global"]
    assert stage.criterion is not None and stage.criterion.value == "l1"


def test_strings_with_control_characters_round_trip() -> None:
    # The printer writes only the escapes the lexer reads back (not JSON's \\u0001 or \\r).
    source = 'recipe "a\\"b\\\\c\\nd\\te\x01f\rg"\n'
    recipe = parse(source).recipe
    assert recipe is not None
    decl = recipe.decls[0]
    assert isinstance(decl, ast.RecipeDecl)
    assert decl.name.value == 'a"b\\c\nd\te\x01f\rg'
    assert fmt(source) == source


def test_empty_and_comment_only() -> None:
    assert fmt("") == ""
    assert fmt("\n\n  \n") == ""
    # Blank lines between comments alone are not kept: comments attach to statements.
    assert fmt("# c\n\n# d\n") == "# c\n# d\n"
