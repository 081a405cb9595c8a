"""The run's inputs: data, per-pass seeds, and which models enter the pipeline."""

from __future__ import annotations

import sys
from pathlib import Path

from compiler.bind import unbound
from compiler.plan import Plan
from recipe_lang.diagnostics import KdrError
from runtime.data import DataBundle, build_data


def pass_seed(plan: Plan, index: int) -> int:
    """The seed of pass ``index``: a resumed run reseeds every pass exactly as a fresh one."""
    return (int(plan.settings.get("seed", 0)) * 1_000_003 + index * 7_919) % (2**31 - 1)


def load_data(plan: Plan) -> DataBundle:
    """The plan's data, once every binding it needs is there (all missing ones reported at
    once), with the recipe's directory importable for ``"pkg.mod:fn"`` factories."""
    missing = unbound(plan)
    if missing or plan.data is None:
        raise KdrError(missing)
    recipe_dir = str(Path(plan.source.path).resolve().parent)
    if Path(plan.source.path).exists() and recipe_dir not in sys.path:
        sys.path.append(recipe_dir)  # after installed packages: a recipe cannot shadow them
    seed = int(plan.settings.get("seed", 0))
    return build_data(
        plan.data["call"],
        list(plan.data.get("args") or []),
        dict(plan.data.get("kwargs") or {}),
        seed=seed,
    )


def input_models(plan: Plan) -> list[str]:
    """Models measured as they enter the pipeline: subjects and teachers, in order of use."""
    order: list[str] = []
    for p in plan.passes:
        for name in (p.subject, *p.reads):
            spec = plan.models.get(name)
            if spec is None or spec.kind in ("snapshot", "ensemble") or name in order:
                continue
            order.append(name)
    return order
