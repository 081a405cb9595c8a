"""What ``kdr run`` executes: a recipe compiled with ``--set``, or a plan JSON, plus bindings.

A recipe is a template: ``--student CALL`` binds a student the recipe leaves undeclared and
``--data CALL`` binds (or replaces) its data; ``--device`` overrides ``set device``. Bindings
change the plan, so its hash is recomputed: a resumed run must be given the same bindings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from compiler.driver import compile_file
from compiler.plan import Plan, PlanModel
from compiler.values import Values
from compiler.zoo import BUILTIN_MODELS, DATASETS, is_zoo_name
from recipe_lang import ast
from recipe_lang.diagnostics import Diagnostic, Note, error
from recipe_lang.parser import parse_value


def _call(text: str, flag: str, diagnostics: list[Diagnostic]) -> ast.Call | None:
    value = parse_value(text)
    if not isinstance(value, ast.Call):
        diagnostics.append(
            error(
                "KDR105",
                f"`{flag} {text}` is not a call",
                None,
                Note(kind="help", message=f'write e.g. {flag} "resnet18()"'),
            )
        )
        return None
    return value


def _literal(call: ast.Call, diagnostics: list[Diagnostic]) -> dict:
    return Values({}, diagnostics.append).literal(call)


def bind(
    plan: Plan,
    student: str | None,
    data: str | None,
    device: str | None,
    diagnostics: list[Diagnostic],
) -> Plan:
    plan = plan.model_copy(deep=True)
    if student:
        call = _call(student, "--student", diagnostics)
        spec = plan.models.get("student")
        if spec is not None and spec.kind != "placeholder":
            diagnostics.append(
                error(
                    "KDR101",
                    "`--student` binds an undeclared student, but this recipe declares `student`",
                    None,
                    Note(kind="help", message="drop --student or the declaration"),
                )
            )
        elif call is not None:
            if not call.factory and not (is_zoo_name(call.callee) or call.callee in BUILTIN_MODELS):
                diagnostics.append(error("KDR100", f"unknown model constructor `{call.callee}`"))
            lit = _literal(call, diagnostics)
            plan.models["student"] = PlanModel(
                kind="factory" if call.factory else "constructor",
                constructor=call.callee,
                args=lit["args"],
                kwargs=lit["kwargs"],
            )
            plan.placeholders = [p for p in plan.placeholders if p != "student"]
    if data:
        call = _call(data, "--data", diagnostics)
        if call is not None:
            if not call.factory and call.callee not in DATASETS:
                diagnostics.append(
                    error(
                        "KDR100",
                        f"unknown dataset `{call.callee}`",
                        None,
                        Note(kind="help", message="known: " + ", ".join(DATASETS)),
                    )
                )
            plan.data = {**_literal(call, diagnostics), "name": "data"}
    if device:
        plan.settings["device"] = device
    plan.hash = plan.compute_hash()
    return plan


def load_plan(args: argparse.Namespace) -> tuple[Plan | None, list[Diagnostic], dict[str, str]]:
    """The plan to run, its diagnostics (warnings included) and the sources to render them."""
    path = Path(args.file)
    diagnostics: list[Diagnostic] = []
    sources: dict[str, str] = {}
    if path.suffix == ".json":
        try:
            plan = Plan.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError, ValueError) as exc:
            first = str(exc).splitlines()[0]
            return (
                None,
                [error("KDR504", f"cannot read plan `{path}`: {first}").with_file(str(path))],
                sources,
            )
        if plan.compute_hash() != plan.hash:
            diagnostics.append(
                error(
                    "KDR504",
                    f"plan `{path}` was edited: its hash does not match its content",
                    None,
                    Note(kind="help", message="recompile it with `kdr compile`"),
                ).with_file(str(path))
            )
            return None, diagnostics, sources
        if args.set:
            diagnostics.append(
                error("KDR105", "--set applies to recipes, not to compiled plans").with_file(
                    str(path)
                )
            )
            return None, diagnostics, sources
    else:
        result = compile_file(path, overrides=args.set)
        sources[result.file] = result.source
        diagnostics += result.diagnostics
        if result.plan is None:
            return None, diagnostics, sources
        plan = result.plan
    bound_diags: list[Diagnostic] = []
    plan = bind(plan, args.student, args.data, args.device, bound_diags)
    diagnostics += [d.with_file(str(path)) for d in bound_diags]
    if any(d.is_error for d in diagnostics):
        return None, diagnostics, sources
    return plan, diagnostics, sources
