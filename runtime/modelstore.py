"""Live models of a run: built from the plan's specs, changed by passes, rebuilt on resume.

Every model carries a *lineage*: the spec it was built from and the history of graph passes
applied to it (op + JSON-able record). A checkpoint stores the lineage and the state dict;
:func:`rebuild` builds the spec afresh, replays the history (``runtime.passes.replay_pass``)
to recover the transformed structure, then loads the weights. No pickled code is involved.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from compiler.bind import unbound_model
from compiler.plan import Plan, PlanModel
from recipe_lang.diagnostics import KdrError, Note, error
from runtime.data import DataBundle
from runtime.models import Ensemble, build_model, load_weights


@dataclass
class Lineage:
    """What rebuilds a model's structure: the spec and the graph passes applied since."""

    spec: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_plain(self) -> dict[str, Any]:
        return {"spec": copy.deepcopy(self.spec), "history": copy.deepcopy(self.history)}

    @staticmethod
    def from_plain(data: dict[str, Any]) -> Lineage:
        return Lineage(spec=dict(data["spec"]), history=list(data.get("history", [])))


def build_from_spec(spec: dict[str, Any], data: DataBundle) -> nn.Module:
    """A fresh model for a constructor/factory spec (weights loaded if it names a file)."""
    kwargs = dict(spec.get("kwargs") or {})
    if spec.get("pretrained"):
        kwargs.setdefault("weights", "DEFAULT")
    constructor = spec["constructor"]
    if spec.get("kind") == "factory" and ":" not in constructor:
        raise KdrError(error("KDR504", f'factory `{constructor}` must be "pkg.mod:fn"'))
    model = build_model(
        constructor,
        list(spec.get("args") or []),
        kwargs,
        in_channels=data.in_channels,
        num_classes=data.num_classes,
        image_size=data.image_size,
    )
    if spec.get("weights_path"):
        load_weights(model, spec["weights_path"])
    return model


def rebuild(lineage: Lineage, data: DataBundle, state_dict: dict[str, Any]) -> nn.Module:
    """Rebuild a checkpointed model: build the spec, replay its history, load the weights."""
    from runtime.passes import replay_pass

    model = build_from_spec(lineage.spec, data)
    for entry in lineage.history:
        model = replay_pass(entry["op"], model, entry.get("record") or {})
    try:
        model.load_state_dict(state_dict)
    except (RuntimeError, KeyError) as exc:
        raise KdrError(
            error(
                "KDR504",
                "a checkpoint does not fit the model rebuilt from its history",
                None,
                Note(message=str(exc).splitlines()[0]),
                Note(
                    kind="help",
                    message="the run directory may come from another kdr "
                    "version: start a fresh run without --resume",
                ),
            )
        ) from exc
    return model


class ModelStore:
    """The run's models by name, with their lineages."""

    def __init__(self, plan: Plan, data: DataBundle):
        self.plan = plan
        self.data = data
        self.models: dict[str, nn.Module] = {}
        self.lineages: dict[str, Lineage] = {}

    def spec(self, name: str) -> PlanModel:
        if name not in self.plan.models:
            raise KdrError(error("KDR100", f"the plan names no model `{name}`"))
        return self.plan.models[name]

    def get(self, name: str) -> nn.Module:
        """The live model ``name``, built on first use (ensembles from their members)."""
        if name in self.models:
            return self.models[name]
        spec = self.spec(name)
        if spec.kind == "ensemble":
            return Ensemble([self.get(m) for m in spec.members])
        if spec.kind == "placeholder":
            raise KdrError(unbound_model(name))
        if spec.kind == "snapshot":
            raise KdrError(error("KDR999", f"snapshot `{name}` used before it was taken"))
        plain = spec.model_dump(mode="json")
        self.models[name] = build_from_spec(plain, self.data)
        self.lineages[name] = Lineage(spec=plain)
        return self.models[name]

    def set(self, name: str, model: nn.Module, lineage: Lineage | None = None) -> None:
        self.models[name] = model
        if lineage is not None:
            self.lineages[name] = lineage

    def record(self, name: str, op: str, record: dict[str, Any]) -> None:
        self.lineages[name].history.append({"op": op, "record": record})

    def snapshot(self, source: str, name: str) -> nn.Module:
        copy_ = copy.deepcopy(self.get(source))
        copy_.eval()
        for p in copy_.parameters():
            p.requires_grad_(False)
        self.models[name] = copy_
        self.lineages[name] = Lineage.from_plain(self.lineages[source].to_plain())
        return copy_
