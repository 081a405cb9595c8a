"""KDR300: a prune or replace not followed by any training before the end or an export."""

from __future__ import annotations

from compiler.program import Program
from compiler.state import States
from recipe_lang.codes import EXAMPLE_HEAD, EXAMPLE_TRAINED, code_info
from recipe_lang.diagnostics import Diagnostic, Note, Span, warning


def _warn(kind: str, name: str, change: Span, where: str) -> Diagnostic:
    return warning(
        "KDR300",
        f"`{kind}` changes `{name}` but no training follows it before {where}",
        change,
        Note(
            kind="help",
            message="add recovery training: `with distill from T for N epochs`, "
            "or a `train`/`distill` stage after it",
        ),
    )


def check(program: Program) -> list[Diagnostic]:
    out = []
    states = States(program)
    for step in program.steps:
        pending = states.get(step.subject).pending_change
        if step.kind == "export" and pending is not None:
            out.append(_warn(pending[0], step.subject, pending[1], "it is exported"))
        # Quantizing with no recovery in between also locks the change in.
        if step.kind == "quantize" and not step.trains and pending is not None:
            out.append(_warn(pending[0], step.subject, pending[1], "it is quantized"))
        states.apply(step)
    reported = {d.span for d in out}
    for name, state in states.models.items():
        if state.pending_change is not None and state.pending_change[1] not in reported:
            out.append(
                _warn(
                    state.pending_change[0],
                    name,
                    state.pending_change[1],
                    "the end of the pipeline",
                )
            )
    return out


#: The catalogue entry behind `kdr explain KDR300` and docs/rules.md.
ENTRY = code_info(
    "KDR300",
    "warning",
    "structural change never recovered",
    """
Pruning and cheap-convolution replacement remove capacity; without training afterwards the
model usually loses accuracy. Add a recovery clause (`with distill from T for N epochs`) or a
training stage before the end of the pipeline or the next export.
""",
    EXAMPLE_HEAD + "train student for 3 epochs\nthen prune student 50% channels\n"
    'then export student onnx "s.onnx"',
    EXAMPLE_TRAINED + "then prune student 50% channels with distill from teacher for 1 epoch\n"
    'then export student onnx "s.onnx"',
)
