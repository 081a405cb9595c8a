"""Golden syntax diagnostics and the friendly-mistake table.

Each ``tests/fixtures/syntax/NAME.kdr`` opens with a ``# title:`` comment and is paired with
``NAME.expected``: the exact text ``render_all`` gives for ``parse(...)``'s diagnostics (the
pattern of sqlglot's ``tests/helpers.py``). Regenerate after an intended change with

    KDR_UPDATE_GOLDEN=1 PYTHONPATH=. python -m pytest tests/recipe_lang/test_syntax_golden.py

and review the diff before committing it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from recipe_lang.diagnostics import Diagnostic, render_all
from recipe_lang.friendly import MISTAKES
from recipe_lang.parser import parse

SYNTAX = Path(__file__).resolve().parents[1] / "fixtures" / "syntax"
UPDATE = os.environ.get("KDR_UPDATE_GOLDEN") == "1"
FIRST_LINE = re.compile(r"^(?P<file>[\w.]+):(?P<line>\d+):(?P<col>\d+): error\[KDR001\]: \S")

CASES = sorted(SYNTAX.glob("*.kdr"))


def rendered(path: Path) -> tuple[str, list[Diagnostic]]:
    source = path.read_text(encoding="utf-8")
    result = parse(source, path.name)
    return render_all(result.diagnostics, {path.name: source}) + "\n", result.diagnostics


def test_the_corpus_is_there() -> None:
    assert len(CASES) >= 30
    missing = [p.name for p in CASES if not p.with_suffix(".expected").exists() and not UPDATE]
    assert not missing, f"no .expected file for {missing}; run with KDR_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert source.startswith("# title: "), "every case opens with a title comment"
    text, diagnostics = rendered(path)
    expected_path = path.with_suffix(".expected")
    if UPDATE:
        expected_path.write_text(text, encoding="utf-8")
    assert text == expected_path.read_text(encoding="utf-8")
    # Independent of the golden text: every case is a syntax error, reported at a position,
    # in source order, each one's first line in the spec's fixed form.
    assert diagnostics and all(d.code == "KDR001" and d.is_error for d in diagnostics)
    positions = [(d.span.line, d.span.column) for d in diagnostics if d.span]
    assert len(positions) == len(diagnostics)
    assert positions == sorted(positions)
    firsts = [block.splitlines()[0] for block in text.rstrip("\n").split("\n\n")]
    assert len(firsts) == len(diagnostics)
    for first, d in zip(firsts, diagnostics, strict=True):
        assert d.span is not None
        assert first == f"{path.name}:{d.span.line}:{d.span.column}: error[KDR001]: {d.message}"
        assert FIRST_LINE.match(first)


# ---- exact first lines of the cases the spec names (readable without opening the goldens) --

FIRST_LINES = {
    "unterminated_string": ["unterminated_string.kdr:2:8: error[KDR001]: unterminated string"],
    "stray_character": [
        "stray_character.kdr:2:35: error[KDR001]: unexpected character `@`",
    ],
    "keyword_model_name": [
        "keyword_model_name.kdr:2:7: error[KDR001]: `train` is a keyword; pick another model name"
    ],
    "keyword_param_name": [
        "keyword_param_name.kdr:2:7: error[KDR001]: `for` is a keyword; pick another param name"
    ],
    "keyword_snapshot_name": [
        "keyword_snapshot_name.kdr:3:26: error[KDR001]: `prune` is a keyword; "
        "pick another snapshot name"
    ],
    "quantize_no_precision": [
        "quantize_no_precision.kdr:4:15: error[KDR001]: expected a precision like `int8` "
        "after `quantize student`"
    ],
    "unexpected_end": [
        'unexpected_end.kdr:4:26: error[KDR001]: expected a name or a string like "path", '
        "found the end of the recipe"
    ],
    "positional_after_keyword": [
        "positional_after_keyword.kdr:2:35: error[KDR001]: "
        "a positional argument follows a keyword argument"
    ],
    "duplicate_keyword": [
        "duplicate_keyword.kdr:2:32: error[KDR001]: argument `batch_size` is given twice"
    ],
}


@pytest.mark.parametrize("stem", sorted(FIRST_LINES))
def test_first_lines(stem: str) -> None:
    text, _ = rendered(SYNTAX / f"{stem}.kdr")
    firsts = [block.splitlines()[0] for block in text.rstrip("\n").split("\n\n")]
    assert firsts == FIRST_LINES[stem]


def test_several_errors_are_all_reported_in_order() -> None:
    _, diagnostics = rendered(SYNTAX / "several_errors.kdr")
    lines = [d.span.line for d in diagnostics if d.span]
    assert len(diagnostics) >= 4
    assert lines == sorted(lines)
    assert {3, 4, 6} <= set(lines)
    messages = [d.message for d in diagnostics]
    assert MISTAKES["missing-equals"][0] in messages
    assert MISTAKES["missing-percent"][0] in messages
    # `then prune\nthen quantize`: the error is at the `then` that prune misread as its model
    prune_error = next(d for d in diagnostics if d.message == MISTAKES["missing-percent"][0])
    assert prune_error.span is not None
    assert (prune_error.span.line, prune_error.span.column) == (6, 1)


# ---- every example of the friendly-mistake table --------------------------------------------

EXAMPLES = [
    (label, i, example)
    for label, (_, _, examples) in MISTAKES.items()
    for i, example in enumerate(examples)
]


@pytest.mark.parametrize(
    ("label", "index", "example"), EXAMPLES, ids=[f"{lab}-{i}" for lab, i, _ in EXAMPLES]
)
def test_every_mistake_example(label: str, index: int, example: str) -> None:
    message, help_text, _ = MISTAKES[label]
    result = parse(example, "m.kdr")
    assert result.recipe is None
    first = result.diagnostics[0]
    assert (first.code, first.message) == ("KDR001", message)
    assert [n.message for n in first.notes if n.kind == "help"] == [help_text]


@pytest.mark.parametrize(
    ("label", "index", "example"), EXAMPLES, ids=[f"{lab}-{i}" for lab, i, _ in EXAMPLES]
)
def test_every_mistake_example_after_declarations(label: str, index: int, example: str) -> None:
    """The same message deeper in the parser stack (declarations before the mistake)."""
    source = 'recipe "r"\nparam e = 3\nmodel t = resnet18()\n' + example
    result = parse(source, "m.kdr")
    assert result.diagnostics[0].message == MISTAKES[label][0]
    assert result.diagnostics[0].span is not None
    assert result.diagnostics[0].span.line >= 4


def test_mistake_labels_have_goldens() -> None:
    for label in MISTAKES:
        assert (SYNTAX / f"mistake_{label.replace('-', '_')}.kdr").exists(), label
