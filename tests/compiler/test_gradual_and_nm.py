"""Gradual prunes and N:M patterns: what they lower to, and when the compiler refuses them.

The golden fixtures (tests/fixtures/rules, tests/fixtures/plans) pin the messages and whole
plans; these tests pin the arithmetic and the params, case by case.
"""

from __future__ import annotations

import pytest

from compiler.driver import compile_source
from compiler.ops import (
    PruneChannelsGradualParams,
    PruneWeightsGradualParams,
    PruneWeightsParams,
)

HEAD = (
    "model teacher = convnet(width=32)\nmodel student = convnet(width=16)\n"
    "train teacher for 3 epochs\n"
)


def _plan(stage: str):
    result = compile_source(HEAD + "then " + stage + "\n")
    errors = [f"{d.code} {d.message}" for d in result.diagnostics if d.is_error]
    assert result.plan is not None, errors
    return result.plan


def _codes(stage: str) -> list[str]:
    return [d.code for d in compile_source(HEAD + "then " + stage + "\n").diagnostics]


def test_a_gradual_weights_prune_with_kd_is_one_training_pass():
    plan = _plan(
        "prune student 90% weights by movement gradually over 1000 steps from 10% "
        "every 50 steps exponential with distill from teacher temperature 2, lr 0.01"
    )
    (cut,) = [p for p in plan.passes if p.subject == "student"]
    assert cut.op == "prune.weights.gradual"
    assert isinstance(cut.params, PruneWeightsGradualParams)
    assert (cut.params.cut.ratio, cut.params.cut.criterion) == (0.9, "movement")
    s = cut.params.schedule
    assert (s.start, s.every_steps, s.every_epochs, s.curve) == (0.1, 50, None, "exponential")
    t = cut.params.training
    assert (t.steps, t.epochs, t.lr, t.recovery) == (1000, None, 0.01, False)
    assert t.distill is not None and (t.distill.teacher, t.distill.temperature) == ("teacher", 2)
    assert cut.depends_on == [plan.passes[0].id]  # it reads the trained teacher


def test_a_gradual_channels_prune_has_the_defaults_filled_in():
    plan = _plan("prune student 50% channels by fpgm global gradually over 3 epochs")
    (cut,) = [p for p in plan.passes if p.subject == "student"]
    assert cut.op == "prune.channels.gradual"
    assert isinstance(cut.params, PruneChannelsGradualParams)
    assert (cut.params.cut.ratio, cut.params.cut.criterion, cut.params.cut.ranking) == (
        0.5,
        "fpgm",
        "global",
    )
    s = cut.params.schedule
    assert (s.start, s.every_steps, s.every_epochs, s.curve) == (0.0, None, None, "cubic")
    assert (cut.params.training.epochs, cut.params.training.distill) == (3, None)


def test_nm_implies_weights_and_keeps_its_recovery():
    plan = _plan("prune student 2:4 by random with lr 0.01 for 1 epoch")
    ops = [(p.op, p.subject) for p in plan.passes]
    assert ops[1:] == [("prune.weights", "student"), ("train", "student")]
    cut = plan.passes[1].params
    assert isinstance(cut, PruneWeightsParams)
    assert cut.pattern is not None and (cut.pattern.n, cut.pattern.m, cut.ratio) == (2, 4, None)
    assert cut.criterion == "random"
    assert plan.passes[2].params.recovery is True  # type: ignore[union-attr]


@pytest.mark.parametrize("over", [1, 2, 3, 7, 100])
@pytest.mark.parametrize("every", [1, 2, 3, 7, 100, 101])
def test_kdr106_same_units_iff_a_single_update(over: int, every: int):
    # Updates at 0, K, 2K, ... below N: more than one exactly when K < N.
    for unit in ("steps", "epochs"):
        stage = (
            f"prune student 50% channels gradually over {over} {unit} every {every} {unit} "
            "with distill from teacher"
        )
        assert ("KDR106" in _codes(stage)) == (every >= over), (stage, _codes(stage))


@pytest.mark.parametrize(("epochs", "refused"), [(1, True), (2, False), (5, False)])
def test_kdr106_default_frequency_is_once_per_epoch(epochs: int, refused: bool):
    stage = f"prune student 50% channels gradually over {epochs} epochs with distill from teacher"
    assert ("KDR106" in _codes(stage)) == refused


def test_kdr106_is_left_to_the_run_when_units_differ():
    # 1 epoch with updates every 1000 steps may or may not fit: the data decides (at run time).
    stage = "prune student 50% channels gradually over 1 epoch every 1000 steps"
    assert "KDR106" not in _codes(stage)
    assert "KDR106" not in _codes("prune student 50% channels gradually over 5 steps every 1 epoch")


def test_a_gradual_prune_counts_as_training_for_the_rules():
    stage = "prune student 50% channels gradually over 2 epochs with distill from teacher"
    codes = _codes(stage + '\nthen export student onnx "s.onnx"')
    assert "KDR300" not in codes  # no "structural change without recovery"
    assert "KDR303" not in _codes("prune student 20% channels\nthen " + stage)


def test_gradual_inside_repeat_unrolls_to_one_pass_per_iteration():
    plan = _plan("repeat 3 { prune student 30% weights gradually over 2 epochs }")
    assert [p.op for p in plan.passes[1:]] == ["prune.weights.gradual"] * 3


@pytest.mark.parametrize(
    ("stage", "code"),
    [
        ("prune student 50% weights gradually over 3 epochs from 50%", "KDR102"),
        ("prune student 50% weights gradually over 3 epochs from -1%", "KDR102"),
        ("prune student 50% weights gradually over 0 epochs", "KDR102"),
        ("prune student 50% weights gradually over 3 epochs every 1.5 steps", "KDR104"),
        ("prune student 50% weights gradually over 3 lightyears", "KDR104"),
        ("prune student 0:4", "KDR102"),
        ("prune student 5:4", "KDR102"),
        ("prune student 1:1", "KDR102"),
        ("prune student 2:4 global", "KDR103"),
        ("prune student 2:4 channels", "KDR103"),
        ("prune student 2:4 gradually over 3 epochs", "KDR103"),
        ("prune student 2:4 by taylor", "KDR103"),
        ("prune student 2:4 by movement", "KDR103"),
        ("prune student 50% weights by movement", "KDR103"),
        ("prune student 50% channels by movement gradually over 3 epochs", "KDR103"),
        ("prune student 50% weights by fpgm gradually over 3 epochs", "KDR103"),
        ("prune student to 2M params gradually over 3 epochs", "KDR103"),
        ("prune student 50% gradually over 3 epochs with lr 0.1 for 1 epoch", "KDR103"),
        ("prune student 50% gradually over 3 epochs quadratic", "KDR103"),
    ],
)
def test_refused_forms(stage: str, code: str):
    result = compile_source(HEAD + "then " + stage + "\n")
    assert code in [d.code for d in result.diagnostics if d.is_error]
    assert result.plan is None


def test_kdr301_once_per_recipe_with_a_count_of_the_others():
    stages = (
        "prune student 30% weights with lr 0.1 for 1 epoch\n"
        "then repeat 2 { prune student 10% weights with lr 0.1 for 1 epoch }\n"
        "then prune student 2:4 with lr 0.1 for 1 epoch"
    )
    result = compile_source(HEAD + "then " + stages + "\n")
    warnings = [d for d in result.diagnostics if d.code == "KDR301"]
    assert len(warnings) == 1
    (w,) = warnings
    assert w.span is not None and (w.span.line, w.span.column) == (4, 24)  # the word `weights`
    notes = " / ".join(n.message for n in w.notes)
    assert "2 other `weights` prune stages (lines 5, 6)" in notes
    assert "2:4" in notes and "no speedup on CPU" in notes


@pytest.mark.parametrize(
    ("stage", "ranking"),
    [
        ("prune student 90% weights gradually over 3 epochs", "global"),
        ("prune student 50% weights", "global"),
        ("prune student 50% weights local", "local"),
        ("prune student 2:4 weights", "local"),
        ("prune student 50% channels", "local"),
        ("prune student 50% channels gradually over 3 epochs", "local"),
    ],
)
def test_single_weights_rank_across_layers_by_default(stage: str, ranking: str):
    """Unstructured prunes default to one ranking across layers; channels and N:M groups rank
    within each layer; a written ranking wins."""
    plan = _plan(stage)
    (cut,) = [p for p in plan.passes if p.subject == "student"]
    params = getattr(cut.params, "cut", cut.params)
    assert params.ranking == ranking


def test_weights_params_built_directly_take_the_same_defaults():
    assert PruneWeightsParams(ratio=0.5).ranking == "global"
    assert PruneWeightsParams(pattern={"n": 2, "m": 4}).ranking == "local"
    with pytest.raises(ValueError, match="ranking is `local`"):
        PruneWeightsParams(pattern={"n": 2, "m": 4}, ranking="global")
