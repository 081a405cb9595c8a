"""Parser behaviours not covered by the corpora: scale, recovery, regressions."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from recipe_lang import ast
from recipe_lang.diagnostics import KdrError
from recipe_lang.parser import parse, parse_recipe
from recipe_lang.printer import format_recipe

SHORT = ["prune 10%", "evaluate", "train for 1 epoch", "snapshot as s", "quantize int8"]
RICH = [
    "prune {i}% channels by l1 with distill from dense for 1 epoch",
    "train for {i} steps with cutmix 1.0, lr 0.01",
    "distill from teacher temperature 4 alpha 0.9 for 1 epoch",
    "replace convs in layer{i}.* with group(4)",
    "evaluate",
]


def generated(n: int, stages: list[str]) -> str:
    lines = ["model teacher = resnet18()", "model student = convnet(width=16)", ""]
    for i in range(n):
        stage = stages[i % len(stages)].format(i=i % 90 + 1)
        lines.append(("then " if i else "") + stage + (" # note" if i % 7 == 0 else ""))
    return "\n".join(lines) + "\n"


def cpu_time(fn: Callable[[], object]) -> float:
    # CPU time, not wall time: the tests share the machine with training runs.
    start = time.process_time()
    fn()
    return time.process_time() - start


def test_ten_thousand_stages_parse_and_print_in_under_two_seconds() -> None:
    source = generated(10_000, SHORT)
    results = []
    parsed = cpu_time(lambda: results.append(parse(source)))
    result = results[0]
    assert result.ok and result.recipe is not None
    assert len(result.recipe.stages) == 10_000
    assert len(result.recipe.comments) == len(range(0, 10_000, 7))
    texts: list[str] = []
    printed = cpu_time(lambda: texts.append(format_recipe(result.recipe)))
    assert texts == [source]
    assert parsed < 2.0, f"parsing 10,000 stages took {parsed:.2f}s"
    assert printed < 2.0, f"printing 10,000 stages took {printed:.2f}s"


def test_parsing_and_printing_scale_linearly() -> None:
    small, large = generated(500, RICH), generated(2_000, RICH)
    ratio = cpu_time(lambda: parse(large)) / max(cpu_time(lambda: parse(small)), 1e-3)
    assert ratio < 8, f"4x the stages took {ratio:.1f}x the time"
    r_small, r_large = parse(small).recipe, parse(large).recipe
    assert r_small is not None and r_large is not None
    # The printer used to rescan every pending comment per statement (quadratic).
    ratio = cpu_time(lambda: format_recipe(r_large)) / max(
        cpu_time(lambda: format_recipe(r_small)), 1e-3
    )
    assert ratio < 8, f"4x the stages took {ratio:.1f}x the time to print"


def test_a_decimal_ending_in_a_dot_parses() -> None:
    # Regression: comments were collected with lark's root lexer, which read `1.` as the
    # scope pattern `1` and reported the `.` as an unexpected character.
    result = parse("train for 1. epochs # one\n")
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.recipe is not None
    assert [c.text for c in result.recipe.comments] == ["# one"]


def test_comments_inside_strings_are_not_comments() -> None:
    recipe = parse_recipe('export onnx "out/#1.onnx" # real\n')
    assert [c.text for c in recipe.comments] == ["# real"]
    stage = recipe.stages[0]
    assert isinstance(stage, ast.ExportStage) and stage.path.value == "out/#1.onnx"
    assert recipe.comments[0].span.column == 27


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("train then for 3 epochs", "`then` is a keyword, not a model name"),
        ("prune model 50% channels", "`model` is a keyword, not a model name"),
        ("quantize model int8", "`model` is a keyword, not a model name"),
        ('export then onnx "m.onnx"', "`then` is a keyword, not a model name"),
        ("distill from then for 1 epoch", "`then` is a keyword, not a teacher"),
    ],
)
def test_a_keyword_is_not_a_model(source: str, message: str) -> None:
    # The contextual lexer reads a keyword as a NAME where the keyword cannot follow.
    result = parse(source)
    assert not result.ok
    assert [d.message for d in result.diagnostics] == [message]


def test_misread_keyword_moves_the_error_to_it() -> None:
    result = parse("train for 1 epoch\nthen prune\nthen evaluate\nthen prune\nthen evaluate")
    spans = [(d.span.line, d.span.column) for d in result.diagnostics if d.span]
    assert spans == [(3, 1), (5, 1)]


def test_spec_prune_order_parses() -> None:
    recipe = parse_recipe("prune student 50% channels by l1 global in layer3.* except fc")
    stage = recipe.stages[0]
    assert isinstance(stage, ast.PruneStage)
    assert [w.value for w in stage.words] == ["channels", "global"]
    assert [s.pattern for s in stage.include] == ["layer3.*"]
    assert [s.pattern for s in stage.exclude] == ["fc"]


def test_parse_recipe_raises_kdr_error_with_all_diagnostics() -> None:
    with pytest.raises(KdrError) as info:
        parse_recipe("prune\nthen distill\n", "x.kdr")
    assert [d.file for d in info.value.diagnostics] == ["x.kdr", "x.kdr"]
    assert len(info.value.diagnostics) == 2


def test_syntax_errors_are_capped() -> None:
    source = "\n".join(["then prune"] * 100)
    result = parse(source)
    assert 1 <= len(result.diagnostics) <= 20
