"""A training run stopped at a gradual prune's cut resumes bit-identically (engine level; the
run-directory path with SIGKILL is tested in tests/runtime/gradual/test_gradual_runs.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from compiler.ops import PruneChannelsGradualParams, PruneWeightsGradualParams
from runtime.data import build_data
from runtime.engine import TrainConfig, fit
from runtime.fit_state import LoopState
from runtime.gradual import GradualPrune
from runtime.gradual.hook import schedule_points
from runtime.models import build_model


def _data() -> Any:
    return build_data("mnist10k", [], {"batch_size": 32, "limit": 160, "eval_limit": 32}, seed=0)


def _params(kind: str) -> Any:
    schedule = {"every_steps": 3, "curve": "linear"}
    training = {"steps": 14}
    if kind == "channels":
        cut = {"ratio": 0.5, "criterion": "taylor"}
        return PruneChannelsGradualParams(cut=cut, schedule=schedule, training=training)
    cut = {"ratio": 0.8, "criterion": "movement"}
    return PruneWeightsGradualParams(cut=cut, schedule=schedule, training=training)


def _hook(model: Any, data: Any, params: Any, saves: list[Any] | None) -> GradualPrune:
    spe = data.steps_per_epoch
    points = schedule_points(params, 14, spe)

    def save(state: LoopState, hook_state: dict[str, Any]) -> None:
        if saves is not None:
            saves.append((copy.deepcopy(state), copy.deepcopy(hook_state), copy.deepcopy(model)))

    def batches(step: int) -> Any:
        return lambda: data.train_batches(torch.Generator().manual_seed(step))

    return GradualPrune(
        model, params, points, example=data.example_batch(4), seed=3, batches=batches, save=save
    )


@pytest.mark.parametrize("kind", ["weights", "channels"])
def test_resume_at_a_cut_is_bit_identical(kind: str) -> None:
    data, params = _data(), _params(kind)
    cfg = TrainConfig(steps=14, optimizer="adamw", keep_zeros=True, seed=5, mixup=0.2)
    torch.manual_seed(0)
    model = build_model("convnet", [], {"width": 8}, in_channels=1, num_classes=10)
    saves: list[Any] = []
    fit(model, data, cfg, _hook(model, data, params, saves))
    assert [s[0].step for s in saves] == [3, 6, 9, 12]
    state, hook_state, snapshot = saves[1]  # stopped right after the cut at step 6
    hook = _hook(snapshot, data, params, None)
    hook.load_state_dict(hook_state)
    fit(snapshot, data, cfg, hook, start=state)
    assert [p.shape for p in snapshot.parameters()] == [p.shape for p in model.parameters()]
    for a, b in zip(model.state_dict().values(), snapshot.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert hook.updates == saves[-1][1]["updates"]  # the cuts after the resume, measured alike
