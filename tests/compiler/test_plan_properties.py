"""Properties of the plan: serialisation, determinism, hashing, DAG edges, stage expansion."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import networkx as nx
import pytest
from kdr_golden import RECIPES, ROOT

from compiler.driver import compile_file, compile_source
from compiler.plan import Plan, PlanPass, dependency_graph
from compiler.settings import DEFAULT_SETTINGS

H = "model teacher = convnet(width=32)\nmodel student = convnet(width=16)\n"
T = H + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs\n"
ALL_RECIPES = sorted(RECIPES.glob("*.kdr"))


def plan_of(source: str, overrides: tuple[str, ...] = ()) -> Plan:
    result = compile_source(source, "t.kdr", overrides)
    assert not result.has_errors, [d.message for d in result.diagnostics]
    assert result.plan is not None
    return result.plan


def ops(plan: Plan) -> list[str]:
    return [p.op for p in plan.passes]


def by_op(plan: Plan, op: str, subject: str | None = None) -> list[PlanPass]:
    return [p for p in plan.passes if p.op == op and (subject is None or p.subject == subject)]


def edge(plan: Plan, a: PlanPass, b: PlanPass) -> bool:
    return dependency_graph(plan).has_edge(a.id, b.id)


# ---- serialisation and determinism --------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_RECIPES, ids=[p.stem for p in ALL_RECIPES])
def test_json_round_trip(path):
    plan = compile_file(path.relative_to(ROOT)).plan
    assert plan is not None
    again = Plan.from_json(plan.to_json())
    assert again == plan
    assert again.to_json() == plan.to_json()
    assert again.compute_hash() == plan.hash


def test_same_recipe_same_bytes_in_process():
    a = compile_file("recipes/quickstart.kdr")
    b = compile_file("recipes/quickstart.kdr")
    assert a.plan is not None and b.plan is not None
    assert a.plan.to_json() == b.plan.to_json()
    assert len(a.plan.hash) == 64


def test_same_bytes_across_processes_and_hash_seeds():
    code = (
        "import sys; from compiler.driver import compile_file;"
        "sys.stdout.write(''.join(compile_file(p).plan.to_json() for p in sys.argv[1:]))"
    )
    files = [str(p.relative_to(ROOT)) for p in ALL_RECIPES]
    outputs = set()
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(
            [sys.executable, "-c", code, *files],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        outputs.add(out)
    assert len(outputs) == 1
    local = "".join(compile_file(f).plan.to_json() for f in files)  # type: ignore[union-attr]
    assert outputs == {local}


def test_hash_changes_with_the_source_and_with_set():
    base = "param epochs = 3\n" + H + "train student for $epochs epochs\n"
    p0 = plan_of(base)
    assert plan_of(base).hash == p0.hash
    assert plan_of(base.replace("width=16", "width=8")).hash != p0.hash
    # A comment changes the source hash, hence the plan hash (the plan records its source).
    assert plan_of("# note\n" + base).hash != p0.hash
    p_set = plan_of(base, ("epochs=1",))
    assert p_set.hash != p0.hash
    assert p_set.params == {"epochs": 1} and p0.params == {"epochs": 3}
    assert p_set.passes[0].params.epochs == 1
    assert p0.passes[0].params.epochs == 3


def test_hash_covers_every_field():
    plan = plan_of(T)
    body = json.loads(plan.canonical_json())
    assert "hash" not in body
    assert plan.hash == plan.compute_hash()
    changed = plan.model_copy(update={"recipe": "other"})
    assert changed.compute_hash() != plan.hash


# ---- the DAG ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_RECIPES, ids=[p.stem for p in ALL_RECIPES])
def test_order_is_a_topological_order_of_the_dag(path):
    plan = compile_file(path.relative_to(ROOT)).plan
    assert plan is not None
    g = dependency_graph(plan)
    assert nx.is_directed_acyclic_graph(g)
    position = {p.id: i for i, p in enumerate(plan.passes)}
    assert all(position[a] < position[b] for a, b in g.edges)
    assert len({p.id for p in plan.passes}) == len(plan.passes)


def test_successive_versions_of_a_model_are_chained():
    plan = plan_of(
        H + "train student for 1 epoch\nthen train student for 2 epochs\n"
        'then evaluate student\nthen export student onnx "s.onnx"\n'
    )
    first, second = by_op(plan, "train", "student")
    assert edge(plan, first, second)
    (ev,) = by_op(plan, "evaluate")
    (ex,) = by_op(plan, "export")
    assert edge(plan, second, ev) and edge(plan, second, ex)
    assert not edge(plan, ev, ex)  # two readers of one version are independent


def test_a_teacher_is_trained_before_it_teaches():
    plan = plan_of(T)
    (train,) = by_op(plan, "train", "teacher")
    (distill,) = by_op(plan, "distill", "student")
    assert edge(plan, train, distill)
    assert distill.reads == ["teacher"]


def test_independent_models_have_no_edges():
    plan = plan_of(H + "train teacher for 1 epoch\nthen train student for 1 epoch\n")
    assert dependency_graph(plan).number_of_edges() == 0


def test_a_snapshot_is_read_after_it_is_taken():
    plan = plan_of(
        H + "train student for 1 epoch\nthen snapshot student as dense\n"
        "then prune student 50% with distill from dense for 1 epoch\n"
    )
    (snap,) = by_op(plan, "snapshot")
    (cut,) = by_op(plan, "prune.channels")
    (recovery,) = by_op(plan, "distill")
    assert edge(plan, snap, recovery)
    # The prune changes the model the snapshot copied: it waits for the copy.
    assert edge(plan, snap, cut)
    assert edge(plan, cut, recovery)
    assert plan.models["dense"].kind == "snapshot" and plan.models["dense"].source == "student"


def test_write_after_read_waits_for_the_reader():
    plan = plan_of(
        T + 'then export student onnx "a.onnx"\n'
        "then prune student 50% with distill from teacher for 1 epoch\n"
    )
    (ex,) = by_op(plan, "export")
    (cut,) = by_op(plan, "prune.channels")
    assert edge(plan, ex, cut)
    assert ops(plan).index("export") < ops(plan).index("prune.channels")


def test_a_teacher_changed_after_teaching_waits_for_the_student():
    plan = plan_of(T + "then prune teacher 50% with lr 0.01 for 1 epoch\n")
    (distill,) = by_op(plan, "distill", "student")
    (cut,) = by_op(plan, "prune.channels", "teacher")
    assert edge(plan, distill, cut)


def test_ensemble_members_are_all_dependencies():
    plan = plan_of(
        H + "model other = convnet(width=8)\nmodel pair = ensemble(teacher, other)\n"
        "train teacher for 1 epoch\nthen train other for 1 epoch\n"
        "then distill student from pair for 1 epoch\n"
    )
    (distill,) = by_op(plan, "distill")
    trains = by_op(plan, "train")
    assert distill.reads == ["teacher", "other"]
    assert all(edge(plan, t, distill) for t in trains)
    assert plan.models["pair"].members == ["teacher", "other"]


# ---- stage expansion and defaults ---------------------------------------------------------------


def test_qat_with_distill_expands_to_prepare_train_convert():
    plan = plan_of(T + "then quantize student int8 qat with distill from teacher for 2 epochs\n")
    tail = plan.passes[2:]
    assert [p.op for p in tail] == ["quant.prepare_qat", "distill", "quant.convert"]
    assert tail[1].params.epochs == 2 and tail[1].params.qat is True
    assert tail[1].params.distill.model_dump() == {
        "teacher": "teacher",
        "temperature": 4.0,
        "alpha": 0.9,
    }
    assert edge(plan, tail[0], tail[1]) and edge(plan, tail[1], tail[2])
    assert "batches" not in tail[0].params.model_dump()


def test_static_int8_expands_to_fuse_prepare_calibrate_convert_with_defaults():
    plan = plan_of(H + "train student for 1 epoch\nthen quantize student int8\n")
    tail = plan.passes[1:]
    assert [p.op for p in tail] == ["fuse.bn", "quant.prepare", "quant.calibrate", "quant.convert"]
    assert tail[1].params.model_dump() == {
        "precision": "int8",
        "mode": "static",
        "granularity": "per_channel",
    }
    assert tail[2].params.model_dump() == {"batches": 32}
    assert [p.subject for p in tail] == ["student"] * 4
    assert all(edge(plan, a, b) for a, b in itertools.pairwise(tail))


def test_dynamic_int8_has_no_calibration():
    plan = plan_of(H + "train student for 1 epoch\nthen quantize student int8 dynamic per_tensor\n")
    assert ops(plan)[1:] == ["quant.prepare", "quant.convert"]
    assert plan.passes[1].params.granularity == "per_tensor"


def test_prune_with_recovery_is_a_cut_then_training():
    plan = plan_of(T + "then prune student 30% with distill from teacher for 2 epochs\n")
    cut, recovery = plan.passes[2:]
    assert (cut.op, recovery.op) == ("prune.channels", "distill")
    assert cut.params.model_dump() == {
        "ratio": 0.3,
        "budget": None,
        "criterion": "l1",
        "ranking": "local",
        "include": [],
        "exclude": [],
    }
    assert recovery.params.recovery is True and recovery.params.epochs == 2
    assert recovery.span == cut.span  # both come from the one stage
    assert edge(plan, cut, recovery)


def test_prune_without_recovery_is_only_a_cut():
    plan = plan_of(T + "then prune student 30% weights by l2 global in layer1.* except fc\n")
    assert ops(plan)[2:] == ["prune.weights"]
    p = plan.passes[2].params
    assert (p.criterion, p.ranking, p.include, p.exclude) == (
        "l2",
        "global",
        ["layer1.*"],
        ["fc"],
    )


def test_prune_to_a_budget():
    plan = plan_of(
        T + "then prune student to 2.5M params with distill from teacher for 1 epoch\n"
        "then prune student to 40% macs with distill from teacher for 1 epoch\n"
    )
    cuts = by_op(plan, "prune.channels")
    budgets = [c.params.budget.model_dump() for c in cuts]
    assert budgets[0] == {"unit": "params", "value": 2_500_000, "fraction": None}
    assert budgets[1] == {"unit": "macs", "value": None, "fraction": 0.4}


def test_replace_ops():
    plan = plan_of(
        T + "then replace student convs in layer2.* with group(4)\n"
        "then distill student from teacher for 1 epoch\n"
    )
    (rep,) = by_op(plan, "replace.group")
    assert rep.params.model_dump() == {"include": ["layer2.*"], "exclude": [], "groups": 4}


def test_repeat_unrolls_to_n_prunes():
    plan = plan_of(
        T + "then snapshot student as dense\nthen repeat 4 {\n  prune 16% channels\n"
        "  then distill from dense for 1 epoch\n}\n"
    )
    cuts = by_op(plan, "prune.channels")
    assert len(cuts) == 4
    assert all(c.params.ratio == 0.16 for c in cuts)
    assert len(by_op(plan, "distill")) == 1 + 4
    assert [c.stage for c in cuts] == [3, 5, 7, 9]
    # Each cut waits for the recovery of the one before.
    distills = by_op(plan, "distill")[1:]
    assert all(edge(plan, d, c) for d, c in zip(distills, cuts[1:], strict=False))


def test_nested_repeat_multiplies():
    plan = plan_of(
        T + "then repeat 2 {\n  repeat 3 {\n    prune 5%\n"
        "    then distill from teacher for 1 epoch\n  }\n}\n"
    )
    assert len(by_op(plan, "prune.channels")) == 6


def test_defaults_are_filled_in():
    plan = plan_of(
        T + "then prune student 50% with distill from teacher for 1 epoch\n"
        "then quantize student int8\n"
    )
    distill = plan.passes[1]
    assert distill.params.distill.model_dump() == {
        "teacher": "teacher",
        "temperature": 4.0,
        "alpha": 0.9,
    }
    assert distill.params.label_smoothing == 0.0 and distill.params.mixup is None
    cut = by_op(plan, "prune.channels")[0]
    assert (cut.params.criterion, cut.params.ranking) == ("l1", "local")
    assert by_op(plan, "quant.calibrate")[0].params.batches == 32
    prep = by_op(plan, "quant.prepare")[0]
    assert (prep.params.mode, prep.params.granularity) == ("static", "per_channel")
    assert plan.settings == DEFAULT_SETTINGS
    assert set(plan.settings) == set(DEFAULT_SETTINGS)


def test_oneliner_defaults():
    plan = plan_of("distill from resnet50 then prune 50% then quantize int8")
    assert ops(plan) == [
        "train",
        "distill",
        "prune.channels",
        "fuse.bn",
        "quant.prepare",
        "quant.calibrate",
        "quant.convert",
    ]
    # The pretrained teacher learns the data's classes first (its head is re-initialised).
    finetune, distill = plan.passes[:2]
    assert (finetune.subject, finetune.params.verb, finetune.params.epochs) == (
        "resnet50",
        "finetune",
        1,
    )
    assert edge(plan, finetune, distill)
    assert distill.params.epochs == 3
    assert plan.placeholders == ["student"] and plan.data is None
    assert plan.models["resnet50"].pretrained and plan.models["resnet50"].inline
    assert {p.subject for p in plan.passes[1:]} == {"student"}


def test_a_pretrained_teacher_is_finetuned_once_unless_trained_or_turned_off():
    twice = "distill from resnet18 for 1 epoch then distill from resnet18 for 1 epoch"
    assert ops(plan_of(twice)) == ["train", "distill", "distill"]
    trained = (
        'model teacher = resnet18(weights="DEFAULT")\n'
        "finetune teacher for 2 epochs\nthen distill from teacher for 1 epoch"
    )
    assert [p.params.epochs for p in plan_of(trained).passes] == [2, 1]
    off = "set teacher_finetune = 0\n" + twice
    assert ops(plan_of(off)) == ["distill", "distill"]
    loaded = 'model teacher = resnet18() from "t.pt"\ndistill from teacher for 1 epoch'
    assert ops(plan_of(loaded)) == ["distill"]


def test_settings_are_resolved():
    plan = plan_of(
        "set optimizer = sgd(lr=0.1, momentum=0.9)\nset schedule = step(step_size=3)\n"
        'set device = "cuda:1"\nset compile = on\n' + H + "train student for 1 epoch\n"
    )
    assert plan.settings["optimizer"] == {"name": "sgd", "lr": 0.1, "momentum": 0.9}
    assert plan.settings["schedule"] == {"name": "step", "step_size": 3, "gamma": 0.1}
    assert plan.settings["device"] == "cuda:1" and plan.settings["compile"] is True


def test_errors_give_no_plan():
    result = compile_source(H + "train student for 0 epochs\n")
    assert result.has_errors and result.plan is None
