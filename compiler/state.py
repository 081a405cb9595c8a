"""Model state through the pipeline: what each model is like *before* each step.

Rules read this instead of re-deriving it: whether a model holds trained weights (and since
where), whether it was converted to int8, whether a structural change awaits recovery
training. A model gains trained weights from ``from``/``weights=``/zoo defaults, a training
phase, or by being a snapshot of a trained model; an ensemble has them when all its members do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from compiler.lower.kinds import STAGES
from compiler.program import Program, Step
from recipe_lang.diagnostics import Span


@dataclass(frozen=True)
class ModelState:
    #: Where the model got trained weights (its declaration for loaded weights), or None.
    trained: Span | None = None
    trained_initially: bool = False
    #: The step that converted it to int8.
    converted: Span | None = None
    #: A prune/replace not yet followed by training: (kind, span).
    pending_change: tuple[str, Span] | None = None
    #: The last prune applied to it.
    pruned: Span | None = None
    #: The last graph stage with no training after it: (kind, span).
    last_untrained_graph: tuple[str, Span] | None = None


class States:
    """The state of every model, updated step by step."""

    def __init__(self, program: Program):
        self.program = program
        self.models: dict[str, ModelState] = {}
        for name, spec in program.models.items():
            initially = spec.has_initial_weights
            self.models[name] = ModelState(
                trained=spec.span if initially else None, trained_initially=initially
            )

    def get(self, name: str) -> ModelState:
        spec = self.program.models.get(name)
        if spec is not None and spec.kind == "ensemble" and spec.members:
            members = [self.get(m) for m in spec.members]
            if all(m.trained is not None for m in members):
                return ModelState(trained=members[-1].trained)
            return ModelState()
        return self.models.get(name, ModelState())

    def untrained_members(self, name: str) -> list[str]:
        spec = self.program.models.get(name)
        if spec is None or spec.kind != "ensemble":
            return [] if self.get(name).trained else [name]
        return [m for m in spec.members if self.get(m).trained is None]

    def apply(self, step: Step) -> None:
        name = step.subject
        state = self.models.get(name, ModelState())
        traits = STAGES[step.kind]
        if traits.copies:
            self.models[step.params["name"]] = replace(
                state, pending_change=None, last_untrained_graph=None
            )
            return
        if traits.graph:
            state = replace(
                state,
                pending_change=(step.kind, step.span),
                pruned=step.span if step.kind == "prune" else state.pruned,
                last_untrained_graph=(step.kind, step.span),
            )
        if step.kind == "quantize":
            state = replace(state, converted=step.span, last_untrained_graph=None)
        if step.trains:
            state = replace(
                state,
                trained=step.training_span or step.span,
                trained_initially=False,
                pending_change=None,
                last_untrained_graph=None,
            )
        self.models[name] = state


def walk(program: Program) -> Iterator[tuple[Step, States]]:
    """Each step with the states *before* it."""
    states = States(program)
    for step in program.steps:
        yield step, states
        states.apply(step)


def final_states(program: Program) -> States:
    states = States(program)
    for step in program.steps:
        states.apply(step)
    return states
