"""``prune P% heads``: what it lowers to, how it prints, and what the compiler refuses.

The rule fixtures (tests/fixtures/rules/kdr103_heads_*) pin the messages and their spans; these
tests pin the plan's ops and params.
"""

from __future__ import annotations

import pytest

from compiler.driver import compile_source
from compiler.ops import PruneHeadsParams, TrainingParams
from recipe_lang.parser import parse_recipe
from recipe_lang.printer import format_recipe

HEAD = (
    "model teacher = convnet(width=32)\nmodel student = convnet(width=16)\n"
    "train teacher for 3 epochs\n"
)


def _compile(stage: str):
    return compile_source(HEAD + "then " + stage + "\n")


def test_heads_with_distill_recovery_is_a_cut_then_a_distill_pass():
    result = _compile("prune student 50% heads with distill from teacher for 1 epoch")
    assert result.plan is not None, [d.message for d in result.diagnostics]
    cut, recovery = [p for p in result.plan.passes if p.subject == "student"]
    assert cut.op == "prune.heads"
    assert cut.params == PruneHeadsParams(ratio=0.5)
    assert recovery.op == "distill"
    assert isinstance(recovery.params, TrainingParams)
    assert recovery.params.recovery and recovery.params.epochs == 1
    assert recovery.params.distill is not None and recovery.params.distill.teacher == "teacher"
    assert cut.id in recovery.depends_on and "teacher" in recovery.reads


def test_heads_options_reach_the_params():
    result = _compile("prune student 25% heads by taylor global in blocks.* except blocks.0")
    assert result.plan is not None
    (cut,) = [p for p in result.plan.passes if p.subject == "student"]
    assert cut.params == PruneHeadsParams(
        ratio=0.25, criterion="taylor", ranking="global", include=["blocks.*"],
        exclude=["blocks.0"],
    )  # fmt: skip


@pytest.mark.parametrize(
    "stage",
    [
        "prune student to 40% macs heads",
        "prune student 2:4 heads",
        "prune student 50% heads gradually over 3 epochs",
        "prune student 50% heads by fpgm",
        "prune student 50% heads by movement",
        "prune student 50% heads weights",
    ],
)
def test_what_heads_cannot_do_is_kdr103(stage: str):
    result = _compile(stage + " with distill from teacher for 1 epoch".replace(
        " for 1 epoch", "" if "gradually" in stage else " for 1 epoch"))  # fmt: skip
    assert result.plan is None
    assert "KDR103" in [d.code for d in result.diagnostics if d.is_error]


def test_heads_prints_before_by_and_round_trips():
    source = HEAD + "then prune student 50% global by l2 heads except head\n"
    text = format_recipe(parse_recipe(source))
    assert "prune student 50% heads by l2 global except head" in text
    assert format_recipe(parse_recipe(text)) == text
