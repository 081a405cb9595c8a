"""AST -> JSON -> AST compares equal, spans included, for every recipe we ship or print."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus import example_recipes, identity_cases

from recipe_lang import ast
from recipe_lang.parser import parse

SOURCES = [(p.name, p.read_text(encoding="utf-8")) for p in example_recipes()] + identity_cases()


@pytest.mark.parametrize(("case_id", "source"), SOURCES, ids=[c for c, _ in SOURCES])
def test_json_round_trip(case_id: str, source: str) -> None:
    recipe = parse(source).recipe
    assert recipe is not None
    text = recipe.to_json()
    back = ast.Recipe.from_json(text)
    assert back == recipe
    assert back.to_json() == text
    # The JSON is plain data with the spans in it (the compiler and editors rely on them).
    data = json.loads(text)
    assert "span" in data and {"line", "column", "end_line", "end_column"} <= set(data["span"])


def test_round_trip_keeps_the_union_kinds() -> None:
    source = (
        'model m = f(1, 50%, 2.5M, "s", name, $p, g(x=1))\n'
        "prune to 2.5M params with distill from ensemble(a, b) temperature 2 for 1 epoch\n"
        "then replace convs with group(4)\n"
    )
    recipe = parse(source).recipe
    assert recipe is not None
    back = ast.Recipe.from_json(recipe.to_json())
    decl = back.decls[0]
    assert isinstance(decl, ast.ModelDecl)
    assert [type(a).__name__ for a in decl.call.args] == [
        "Number",
        "Percent",
        "Size",
        "String",
        "Name",
        "Ref",
        "Call",
    ]
    prune = back.stages[0]
    assert isinstance(prune, ast.PruneStage) and prune.budget is not None
    assert prune.budget.value.value == 2_500_000.0
    assert isinstance(prune.modifiers[0], ast.DistillModifier)
    assert isinstance(prune.modifiers[0].teacher, ast.Call)
    replace = back.stages[1]
    assert isinstance(replace, ast.ReplaceStage) and isinstance(replace.replacement, ast.Call)


def test_a_changed_span_is_a_different_tree() -> None:
    recipe = parse("evaluate").recipe
    assert recipe is not None
    moved = json.loads(recipe.to_json())
    moved["stages"][0]["span"]["column"] = 2
    other = ast.Recipe.from_json(json.dumps(moved))
    assert other != recipe
    assert ast.same_tree(other, recipe)


def test_examples_exist() -> None:
    assert all(isinstance(p, Path) for p in example_recipes())
    assert len(example_recipes()) >= 8
