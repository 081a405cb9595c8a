"""The two sides of the plan contract meet: every op the compiler can emit has a runtime
handler, every handler is reachable from a stage, and every shipped recipe, golden plan and
documented recipe passes the model-aware dry run (``kdr check --models``)."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

from compiler.bind import Bindings
from compiler.driver import compile_file, compile_source
from compiler.lower import STAGE_KINDS, STAGES
from compiler.ops import OPS
from compiler.plan import Plan
from kdr.cli import main
from recipe_lang import ast
from runtime.passes import PASSES
from runtime.run import check_plan
from runtime.run.handlers import HANDLERS

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("*.kdr"))
GOLDEN_PLANS = sorted((ROOT / "tests" / "fixtures" / "plans").glob("*.json"))
#: What a template recipe is bound to in the tests: small and fast.
SMALL = Bindings(student="convnet(width=4)", data="mnist10k(batch_size=16)")

HEAD = (
    "model teacher = convnet(width=8)\nmodel student = convnet(width=4)\n"
    "data = mnist10k(batch_size=16)\ntrain teacher for 1 step\n"
)
#: One stage per way of writing each stage kind; together they must reach every op.
STAGE_FORMS = [
    "train student for 1 step",
    "finetune student for 1 step",
    "distill student from teacher for 1 step",
    "snapshot student as copy",
    "prune student 50% channels by l2 with lr 0.01 for 1 step",
    "prune student to 40% macs",
    "prune student 30% weights",
    "prune student 50% heads with lr 0.01 for 1 step",
    "prune student 2:4 with lr 0.01 for 1 step",
    "prune student 90% weights gradually over 4 steps every 2 steps with distill from teacher",
    "prune student 50% channels by fpgm gradually over 4 steps from 10% every 2 steps linear",
    "replace convs with depthwise_separable",
    "replace convs with ghost",
    "replace convs with group(2)",
    "quantize student int8",
    "quantize student int8 dynamic",
    "quantize student int8 qat with distill from teacher for 1 step",
    "evaluate student",
    'export student onnx "s.onnx"',
]


def _ops_of(stage: str) -> set[str]:
    result = compile_source(HEAD + "then " + stage + "\n")
    assert result.plan is not None, [d.message for d in result.diagnostics]
    return {p.op for p in result.plan.passes}


def test_every_op_has_a_handler_and_every_handler_an_op():
    assert set(HANDLERS) == set(OPS)
    graph_ops = {op for op, info in OPS.items() if info.graph}
    assert graph_ops <= set(PASSES), graph_ops - set(PASSES)
    assert set(PASSES) <= graph_ops, set(PASSES) - graph_ops


def test_every_op_is_reachable_from_some_stage():
    reached = set().union(*(_ops_of(s) for s in STAGE_FORMS))
    assert reached == set(OPS)


def test_every_stage_kind_is_lowered_and_has_traits():
    union = typing.get_args(typing.get_args(ast.Stage)[0]) if typing.get_origin(ast.Stage) else ()
    ast_kinds = {
        typing.get_args(cls.model_fields["kind"].annotation)[0]
        for cls in (union or ast.StageBase.__subclasses__())
    } - {"repeat"}
    assert set(STAGE_KINDS) == set(STAGES) == ast_kinds


def _stand_in_zoo_weights(plan: Plan, zoo_weights) -> None:
    """Stand-ins for the pretrained zoo weights the plan's models ask for (tests/conftest.py)."""
    for spec in plan.models.values():
        pretrained = spec.pretrained or spec.kwargs.get("weights") not in (None, False, "")
        if spec.kind == "constructor" and pretrained and spec.constructor is not None:
            zoo_weights(spec.constructor.rsplit(".", 1)[-1])


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_passes_the_model_aware_dry_run(
    path, tmp_path, monkeypatch, capsys, zoo_weights
):
    result = compile_file(path.relative_to(ROOT))
    assert result.plan is not None
    bindings = SMALL if result.plan.placeholders or result.plan.data is None else Bindings()
    monkeypatch.chdir(tmp_path)
    _stand_in_weights(result.plan)
    _stand_in_zoo_weights(result.plan, zoo_weights)
    args = ["check", "--models", "--json", str(path)]
    if bindings.student and "student" in result.plan.placeholders:
        args += ["--student", bindings.student]
    if result.plan.data is None:
        args += ["--data", str(SMALL.data)]
    code = main(args)
    diagnostics = json.loads(capsys.readouterr().out)
    errors = [d for d in diagnostics if d["severity"] == "error"]
    assert (code, errors) == (0, [])


def _stand_in_weights(plan: Plan) -> None:
    """Write the weights files a recipe loads (``from "path"``), relative to the cwd: models of
    the declared architecture with fresh weights, as a user's checkpoint would be."""
    import torch

    from runtime.modelstore import build_from_spec
    from runtime.run.inputs import load_data

    data = None
    for spec in plan.models.values():
        if spec.weights_path and not Path(spec.weights_path).exists():
            data = data or load_data(plan)
            fresh = spec.model_dump() | {"weights_path": None}
            Path(spec.weights_path).parent.mkdir(parents=True, exist_ok=True)
            torch.save(build_from_spec(fresh, data).state_dict(), spec.weights_path)


@pytest.mark.parametrize("path", GOLDEN_PLANS, ids=[p.stem for p in GOLDEN_PLANS])
def test_every_golden_plan_reads_back_and_dry_runs(path, tmp_path, monkeypatch, zoo_weights):
    monkeypatch.chdir(tmp_path)
    plan = Plan.from_json(path.read_text(encoding="utf-8"))
    _stand_in_zoo_weights(plan, zoo_weights)
    assert plan.compute_hash() == plan.hash
    if plan.placeholders or plan.data is None:
        # A template's plan must be bound first; the dry run says so with a code, not a crash.
        report = check_plan(plan)
        assert {d.code for d in report.diagnostics} <= {"KDR207", "KDR504"}
        assert report.diagnostics
        return
    _stand_in_weights(plan)
    report = check_plan(plan)
    assert [d.message for d in report.diagnostics if d.is_error] == []
    # graph passes, and gradual prunes (estimated with the cut at their target)
    graph_passes = [p.id for p in plan.passes if p.info.graph or p.info.cuts]
    assert [e.pass_id for e in report.estimates if e.pass_id != "input"] == graph_passes
    assert any(e.pass_id == "input" for e in report.estimates)


def test_a_plan_from_an_older_kdr_is_refused_naming_the_field(tmp_path, capsys):
    """A version-1 plan (free-form params) does not fit the typed ops: `kdr run` says which
    field and which version, with a code, and runs nothing."""
    old = ROOT / "tests" / "fixtures" / "old_plans" / "budget_prune_v1.json"
    assert json.loads(old.read_text(encoding="utf-8"))["kdr_plan_version"] == 1
    code = main(["run", str(old), "--run-dir", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "error[KDR504]" in err
    assert "field `passes[2].params.budget.unit`: Field required" in err
    assert "version 1" in err and "kdr compile" in err
    assert not (tmp_path / "run").exists()


def test_the_printers_word_order_covers_the_compilers_words():
    """Option words are the compiler's (compiler.vocab); the front end keeps only their print
    order (recipe_lang.words, which cannot import the compiler): the two lists must agree."""
    from compiler.vocab import GRANULARITIES, PRUNE_WORDS, QUANT_WORDS
    from recipe_lang.words import PRUNE_KINDS, WORDS_IN_ORDER

    assert set(WORDS_IN_ORDER) == set(PRUNE_WORDS) | set(QUANT_WORDS)
    assert tuple(PRUNE_KINDS) == GRANULARITIES
