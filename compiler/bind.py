"""Bindings: what a template recipe leaves to the command line (``--student``, ``--data``).

A recipe that does not declare ``student`` or ``data`` is a template. Binding happens while
compiling, before the stages are lowered, so the bound recipe goes through every check and
rule like a recipe that declares them: ``kdr check --student "resnet18()" --models r.kdr``
checks exactly what ``kdr run --student "resnet18()" r.kdr`` will run.

>>> from compiler.driver import compile_source
>>> r = compile_source("train for 1 epoch", bindings=Bindings(student="convnet(width=4)"))
>>> r.plan.models["student"].constructor, r.plan.placeholders
('convnet', [])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from compiler.declarations import Declarations, data_spec, model_spec
from compiler.plan import Plan
from compiler.values import Values
from recipe_lang import ast
from recipe_lang.diagnostics import Diagnostic, Note, Span, error
from recipe_lang.parser import parse_value


@dataclass(frozen=True)
class Bindings:
    """Calls given on the command line, as text: ``student="resnet18()"``."""

    student: str | None = None
    data: str | None = None

    def __bool__(self) -> bool:
        return bool(self.student or self.data)


def _in_flag(flag: str, report: Callable[[Diagnostic], None]) -> Callable[[Diagnostic], None]:
    """Report a diagnostic about a flag's value: its span points into the flag, not the file."""

    def relay(d: Diagnostic) -> None:
        report(d.model_copy(update={"span": None, "message": f"{flag}: {d.message}"}))

    return relay


def _call(text: str, flag: str, report: Callable[[Diagnostic], None]) -> ast.Call | None:
    value = parse_value(text)
    if isinstance(value, ast.Call):
        return value
    report(
        error(
            "KDR105",
            f"`{flag} {text}` is not a call",
            None,
            Note(kind="help", message=f'write e.g. {flag} "resnet18()"'),
        )
    )
    return None


def apply_bindings(
    decls: Declarations, values: Values, bindings: Bindings, report: Callable[[Diagnostic], None]
) -> None:
    """Bind ``--data`` (replacing a declared dataset) and ``--student`` (an undeclared one)."""
    if bindings.data:
        relay = _in_flag("--data", report)
        call = _call(bindings.data, "--data", report)
        if call is not None:
            spec = data_spec(call, "data", Values(values.params, relay))
            if spec is not None:
                decls.data, decls.data_span = spec, None
    if bindings.student:
        relay = _in_flag("--student", report)
        if "student" in decls.models:
            report(
                error(
                    "KDR101",
                    "`--student` binds an undeclared student, but this recipe declares `student`",
                    decls.models["student"].span,
                    Note(kind="help", message="drop --student or the declaration"),
                )
            )
            return
        call = _call(bindings.student, "--student", report)
        if call is None:
            return
        student = model_spec("student", call, None, None, Values(values.params, relay))
        if student is not None and student.kind == "ensemble":
            relay(error("KDR104", "a student is one model, not an ensemble"))
        elif student is not None:
            decls.models["student"] = student


def unbound(plan: Plan) -> list[Diagnostic]:
    """Every binding a template's plan still lacks (data, student), all at once, each at the
    first pass that needs it: ``kdr run`` and ``kdr check --models`` report them together."""
    out: list[Diagnostic] = []
    first = plan.passes[0].span if plan.passes else None
    if plan.data is None:
        out.append(
            error(
                "KDR207",
                "this recipe needs data and none is declared or bound",
                first,
                Note(
                    kind="help",
                    message="declare `data = mnist10k()` or pass --data \"cifar10(root='~/data')\"",
                ),
            )
        )
    for name in plan.placeholders:
        use = next((p.span for p in plan.passes if name in (p.subject, *p.reads)), first)
        out.append(unbound_model(name, use))
    return out


def unbound_model(name: str, span: Span | None = None) -> Diagnostic:
    """KDR504: ``name`` is a placeholder that nothing bound."""
    return error(
        "KDR504",
        f"`{name}` is not declared and was not bound",
        span,
        Note(
            kind="help",
            message=f'bind it: --{name} "resnet18()" (kdr run, check or compile), '
            f"or declare `model {name} = ...`",
        ),
    )
