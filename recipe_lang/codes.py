"""Diagnostic codes: the :class:`CodeInfo` record behind ``kdr explain``, and the syntax codes.

Each layer documents the codes it raises: the syntax codes (KDR001) are here, each compatibility
rule module in ``compiler/rules/`` exports its own entry, and ``compiler.catalogue`` holds the
value, declaration and model-aware codes and assembles the full catalogue in code order. The
docs' rule catalogue is generated from it, and a test runs every ``bad`` example (it must raise
exactly that code) and every ``fixed`` example (it must not). Numbers are never reused.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CodeInfo:
    code: str
    severity: str
    title: str
    explanation: str
    bad: str
    fixed: str
    #: Raised only by model-aware checks (``kdr check --models`` / ``kdr run``).
    model_aware: bool = False


def code_info(
    code: str,
    severity: str,
    title: str,
    explanation: str,
    bad: str,
    fixed: str,
    model_aware: bool = False,
) -> CodeInfo:
    """A catalogue entry, its texts trimmed (explanation) or ended by one newline (examples)."""
    return CodeInfo(
        code,
        severity,
        title,
        explanation.strip(),
        bad.strip() + "\n",
        fixed.strip() + "\n",
        model_aware,
    )


#: The two models most examples start from.
EXAMPLE_HEAD = "model teacher = convnet(width=32)\nmodel student = convnet(width=16)\n"
#: ... with a trained teacher and a distilled student.
EXAMPLE_TRAINED = (
    EXAMPLE_HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs\n"
)

#: The syntax codes, raised by the parser and the AST builder.
SYNTAX_CODES: dict[str, CodeInfo] = {
    c.code: c
    for c in [
        code_info(
            "KDR001",
            "error",
            "syntax error",
            """
The text does not follow the recipe grammar: an unexpected token or character, an unterminated
string, a missing `then` between stages, a training stage without a duration, or a keyword used
as a name. The message names what was expected in words; fix the text at the caret.
""",
            EXAMPLE_HEAD + "train teacher for 3 epochs\ndistill student from teacher for 3 epochs",
            EXAMPLE_HEAD
            + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs",
        ),
    ]
}


def describe(info: CodeInfo) -> str:
    """The long text of a code, as ``kdr explain`` prints it."""
    parts = [f"{info.code} ({info.severity}): {info.title}", "", info.explanation]
    if info.bad.strip():
        parts += ["", "Example that triggers it:", "", _indent(info.bad)]
    if info.fixed.strip() and info.fixed != info.bad:
        parts += ["Fixed:", "", _indent(info.fixed)]
    return "\n".join(parts).rstrip() + "\n"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip("\n").splitlines()) + "\n"


__all__ = ["EXAMPLE_HEAD", "EXAMPLE_TRAINED", "SYNTAX_CODES", "CodeInfo", "code_info", "describe"]
