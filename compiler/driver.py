"""The compiler driver: text -> AST -> declarations -> steps -> rules -> plan.

>>> r = compile_source("distill from resnet50 then prune 50% then quantize int8")
>>> [p.op for p in r.plan.passes][:3]
['distill', 'prune.channels', 'fuse.bn']
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from compiler.bind import Bindings, apply_bindings
from compiler.declarations import collect
from compiler.lower import lower_pipeline
from compiler.plan import Plan, build_plan
from compiler.program import Program
from compiler.rules import check_all
from recipe_lang import ast
from recipe_lang.diagnostics import Diagnostic, DiagnosticBag, KdrError, error, internal_error
from recipe_lang.parser import parse


@dataclass
class CompileResult:
    file: str
    source: str
    recipe: ast.Recipe | None = None
    program: Program | None = None
    plan: Plan | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)


def compile_source(
    source: str,
    file: str = "<recipe>",
    overrides: Sequence[str] = (),
    bindings: Bindings | None = None,
) -> CompileResult:
    """Check ``source`` and build its plan; every problem is a diagnostic, never an exception."""
    result = CompileResult(file=file, source=source)
    bag = DiagnosticBag(file)
    # Compiling allocates many small objects (AST nodes, spans, passes) and frees none of them
    # until it returns; the cyclic collector's full passes over them made big recipes compile
    # in superlinear time. Reference counting still frees everything acyclic.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _compile(result, bag, overrides, bindings or Bindings())
    except KdrError as exc:
        bag.extend(exc.diagnostics)
    except RecursionError:
        bag.add(error("KDR102", "the recipe nests too deeply"))
    except Exception as exc:  # a bug in kdr, reported rather than raised
        bag.add(internal_error(exc, file))
    finally:
        if collecting:
            gc.enable()
    result.diagnostics = bag.sorted()
    if result.has_errors:
        result.plan = None
    return result


def _compile(
    result: CompileResult, bag: DiagnosticBag, overrides: Sequence[str], bindings: Bindings
) -> None:
    parsed = parse(result.source, result.file)
    bag.extend(parsed.diagnostics)
    if parsed.recipe is None:
        return
    result.recipe = parsed.recipe
    decls, values = collect(parsed.recipe, result.file, overrides, bag.add)
    apply_bindings(decls, values, bindings, bag.add)
    steps = lower_pipeline(decls, values, bag.add, parsed.recipe.stages)
    params = {name: values.literal(v) for name, (v, _) in sorted(decls.params.items())}
    program = Program(
        file=result.file,
        source=result.source,
        recipe=parsed.recipe,
        name=decls.name,
        params=params,
        settings=decls.settings,
        data=decls.data,
        data_span=decls.data_span,
        models=decls.models,
        steps=steps,
    )
    result.program = program
    bag.extend(check_all(program))
    if not bag.has_errors:
        result.plan = build_plan(program)


def compile_file(
    path: str | Path, overrides: Sequence[str] = (), bindings: Bindings | None = None
) -> CompileResult:
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        result = CompileResult(file=str(path), source="")
        result.diagnostics = [error("KDR001", f"cannot read recipe: {reason}").with_file(str(path))]
        return result
    return compile_source(source, str(path), overrides, bindings)
