"""Schedules, optimizers and the new ``with`` modifiers: what the plan holds for each.

Every training clause (train, distill, a prune's recovery, a gradual prune, QAT) takes every
modifier; the settings and per-stage specs validate as the contract's models; defaults are
filled in; the fit checks (KDR107/KDR108) and the validation-split check (KDR208) fire where
they should and not elsewhere.
"""

from __future__ import annotations

from typing import Any

import pytest

from compiler.driver import compile_source
from compiler.ops import TrainingParams, training_of
from compiler.optim_params import SCHEDULE_ARGS, LrSchedule, OptimizerSpec
from compiler.optim_values import REQUIRED_ARGS, SCHEDULE_DEFAULTS
from compiler.vocab import SCHEDULES
from compiler.zoo import SCHEDULES as ZOO_SCHEDULES
from recipe_lang.parser import parse
from recipe_lang.printer import format_recipe

HEAD = (
    "data = mnist10k(val=1000)\n"
    "model teacher = convnet(width=8)\n"
    "model student = convnet(width=4)\n"
    "train teacher for 1 step\n"
)
MODS = (
    "optimizer sgd(lr=0.01, momentum=0.9), schedule multistep(milestones=[2], gamma=0.5), "
    "warmup 1 epoch, weight_decay 0.0001, clip_grad 1.0, ema 0.999, keep best by loss"
)
#: Each training clause with ``{}`` where its modifiers go.
CLAUSES = {
    "train": "then train student for 3 epochs with {}",
    "finetune": "then finetune student for 3 epochs with {}",
    "distill": "then distill student from teacher for 3 epochs with {}",
    "with-distill": "then train student for 3 epochs with distill from teacher, {}",
    "recovery": "then prune student 50% channels with {} for 3 epochs",
    "gradual": "then prune student 50% weights gradually over 3 epochs every 10 steps with {}",
    "qat": "then quantize student int8 qat with {} for 3 epochs",
}


def _compile(source: str) -> Any:
    result = compile_source(source)
    errors = [f"{d.code} {d.message}" for d in result.diagnostics if d.is_error]
    assert not errors, errors
    assert result.plan is not None
    return result


def _trainings(source: str) -> list[TrainingParams]:
    plan = _compile(source).plan
    return [t for t in (training_of(p.params) for p in plan.passes) if t is not None]


def _codes(source: str) -> list[str]:
    return [d.code for d in compile_source(source).diagnostics]


def test_zoo_accepts_every_schedule_of_the_vocabulary():
    assert ZOO_SCHEDULES == SCHEDULES
    assert set(SCHEDULE_ARGS) == set(SCHEDULES)


@pytest.mark.parametrize("clause", list(CLAUSES), ids=list(CLAUSES))
def test_every_training_clause_takes_every_modifier(clause):
    trainings = _trainings(HEAD + CLAUSES[clause].format(MODS))
    assert len(trainings) == 2
    first, t = trainings
    assert first.optimizer is None and first.schedule is None and first.keep_best is None
    assert t.optimizer == OptimizerSpec(name="sgd", lr=0.01, momentum=0.9)
    assert t.schedule == LrSchedule(name="multistep", milestones=[2], gamma=0.5)
    assert t.warmup is not None and (t.warmup.epochs, t.warmup.steps) == (1, None)
    assert (t.weight_decay, t.clip_grad, t.ema, t.keep_best) == (0.0001, 1.0, 0.999, "loss")
    assert t.recovery == (clause == "recovery")
    assert t.qat == (clause == "qat")


def test_keep_best_defaults_to_accuracy_and_words_name_specs():
    (_, t) = _trainings(HEAD + "then train student for 2 epochs with keep best, schedule cosine")
    assert t.keep_best == "accuracy"
    assert t.schedule == LrSchedule(name="cosine")
    (_, t) = _trainings(HEAD + "then train student for 2 epochs with optimizer adamw")
    assert t.optimizer == OptimizerSpec(name="adamw", lr=0.005)


def test_specs_through_params():
    source = (
        "param sched = step(step_size=2)\nparam opt = sgd(lr=0.1)\nparam ms = [1, 2]\n"
        + HEAD
        + "then train student for 3 epochs with schedule $sched, optimizer $opt\n"
        + "then train student for 3 epochs with schedule multistep(milestones=$ms)\n"
    )
    _, a, b = _trainings(source)
    assert a.schedule == LrSchedule(name="step", step_size=2, gamma=0.1)
    assert a.optimizer == OptimizerSpec(name="sgd", lr=0.1)
    assert b.schedule is not None and b.schedule.milestones == [1, 2]


@pytest.mark.parametrize("name", SCHEDULES)
def test_set_schedule_fills_defaults_and_validates(name):
    args = {"multistep": "milestones=[3]", "cosine_restarts": "period=2"}.get(name, "")
    plan = _compile(f"set schedule = {name}({args})\n" + HEAD).plan
    schedule = plan.settings["schedule"]
    LrSchedule.model_validate(schedule)
    for key, value in SCHEDULE_DEFAULTS.get(name, {}).items():
        assert schedule[key] == value
    assert set(schedule) - {"name"} <= set(SCHEDULE_ARGS[name])


@pytest.mark.parametrize("name", sorted(REQUIRED_ARGS))
def test_a_required_argument_is_required(name):
    assert _codes(f"set schedule = {name}\n" + HEAD) == ["KDR104"]


def test_set_schedule_warmup_is_nested():
    plan = _compile("set schedule = cosine(warmup_steps=500)\n" + HEAD).plan
    assert plan.settings["schedule"] == {"name": "cosine", "warmup": {"steps": 500}}
    plan = _compile("set schedule = linear(end=0.1, warmup_epochs=2)\n" + HEAD).plan
    assert plan.settings["schedule"] == {"name": "linear", "end": 0.1, "warmup": {"epochs": 2}}


def test_set_optimizer_is_an_optimizer_spec():
    plan = _compile("set optimizer = sgd(lr=0.1, nesterov=false, momentum=0.5)\n" + HEAD).plan
    spec = plan.settings["optimizer"]
    assert OptimizerSpec.model_validate(spec).model_dump(exclude_none=True) == spec
    assert spec == {"name": "sgd", "lr": 0.1, "momentum": 0.5, "nesterov": False}


@pytest.mark.parametrize(
    ("mods", "code"),
    [
        ("warmup 3 epochs", "KDR107"),
        ("warmup 2 epochs", None),
        ("warmup 100000 steps", None),  # other units: checked at run time
        ("schedule multistep(milestones=[1, 3])", "KDR107"),
        ("schedule multistep(milestones=[1, 2])", None),
        ("schedule step(step_size=3)", "KDR107"),
        ("schedule step(step_size=2)", None),
        ("schedule cosine_restarts(period=3)", "KDR107"),
        ("schedule cosine_restarts(period=1, mult=2)", None),
        ("schedule cosine(warmup_epochs=3)", "KDR107"),
    ],
)
def test_own_schedule_fits_its_training(mods, code):
    codes = _codes(HEAD + f"then train student for 3 epochs with {mods}")
    assert codes == ([code] if code else [])


def test_step_counts_in_the_trainings_unit():
    assert _codes(HEAD + "then train student for 50 steps with warmup 50 steps") == ["KDR107"]
    assert _codes(HEAD + "then train student for 50 steps with warmup 49 steps") == []
    ok = "then train student for 50 steps with schedule multistep(milestones=[10, 40])"
    assert _codes(HEAD + ok) == []


def test_the_recipes_schedule_warns_on_a_short_training():
    source = "set schedule = multistep(milestones=[2])\n" + HEAD.replace("1 step", "3 epochs")
    result = compile_source(source + "then finetune student for 2 epochs\n")
    assert [(d.code, d.severity) for d in result.diagnostics] == [("KDR108", "warning")]
    assert result.plan is not None
    own = "then finetune student for 2 epochs with schedule cosine\n"
    assert _codes(source + own) == []


def test_a_pretrained_teachers_planned_finetune_is_not_warned_about():
    source = (
        "set schedule = multistep(milestones=[3])\ndata = mnist10k(val=100)\n"
        "model student = convnet(width=4)\n"
        'distill student from resnet18(weights="DEFAULT") for 4 epochs\n'
    )
    assert _codes(source) == []


def test_keep_best_needs_a_validation_split():
    base = "model student = convnet(width=4)\ntrain student for 2 epochs with keep best\n"
    assert _codes("data = mnist10k()\n" + base) == ["KDR208"]
    assert _codes("data = mnist10k(val=500)\n" + base) == []
    assert _codes('data = "pkg.data:load"(val=5)\n' + base) == []
    # a template: the data is bound at run time, and checked then
    assert _codes(base) == []


def test_new_modifiers_print_back():
    source = HEAD + CLAUSES["recovery"].format(MODS) + "\n"
    recipe = parse(source).recipe
    assert recipe is not None
    assert format_recipe(recipe).endswith(CLAUSES["recovery"].format(MODS) + "\n")


@pytest.mark.parametrize(
    ("mod", "code", "words"),
    [
        ("keep 3", "KDR104", "`keep` takes `best`, not a number"),
        ("keep f(1)", "KDR104", "`keep` takes `best`, not a call"),
        ("ema f(1)", "KDR104", "`ema` takes a number, not a call"),
        ("warmup f(1)", "KDR104", "`warmup` takes a count and a unit, not a call"),
        ("warmup epochs", "KDR104", "`warmup` takes a count and a unit, not a word"),
        ("lr fast", "KDR104", "`lr` takes a number, not a word"),
        ("optimizer 3", "KDR104", "`optimizer` takes a name or a call, not a number"),
        ("schedule [1]", None, None),  # a list is not a modifier value: a syntax error
        ("clip_grad 1 steps", "KDR103", "`clip_grad` takes a number, not a unit"),
        ("optimizer sgd by loss", "KDR103", "`by` does not apply to `optimizer`"),
        ("keep best by f1", "KDR103", "`keep best by` compares `accuracy` or `loss`, not `f1`"),
    ],
)
def test_each_modifier_takes_its_form(mod, code, words):
    result = compile_source(HEAD + f"then train student for 3 epochs with {mod}")
    if code is None:
        assert [d.code for d in result.diagnostics] == ["KDR001"]
        return
    assert [(d.code, d.message.startswith(words)) for d in result.diagnostics] == [(code, True)]
