"""Params, MACs, size, latency and sparsity on known nets, torchvision and int8 models."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from compiler.ops import make_pass
from runtime.data import build_data
from runtime.metrics import (
    MEASURED_KEYS,
    count_macs,
    count_params,
    latency_ms,
    measure,
    nm_lineage,
    serialized_size,
    sparsity,
    sparsity_fields,
)
from runtime.models import build_model


@pytest.fixture
def helpers(monkeypatch: pytest.MonkeyPatch) -> Any:
    """tests/runtime/kdr_test_factory.py, imported whatever pytest's import mode."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    return importlib.import_module("kdr_test_factory")


def _known() -> nn.Module:
    # conv 3->8 k3 pad1 on 8x8 (bias), depthwise 8->8 k3 groups 8 stride 2 (no bias),
    # global pool, linear 8->5
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )


def test_known_net_params_and_macs() -> None:
    model = _known()
    assert count_params(model) == (3 * 8 * 9 + 8) + (8 * 1 * 9) + (8 * 5 + 5)
    conv1 = 8 * 8 * 8 * (3 * 9)  # C_out * H * W * C_in * k * k
    conv2 = 8 * 4 * 4 * (1 * 9)  # depthwise: C_in / groups = 1
    fc = 5 * 8
    assert count_macs(model, (3, 8, 8)) == conv1 + conv2 + fc
    assert count_macs(model, (4, 3, 8, 8)) == conv1 + conv2 + fc  # per sample


def test_resnet18_macs_at_224() -> None:
    import torchvision

    macs = count_macs(torchvision.models.resnet18(), (3, 224, 224))
    assert macs == pytest.approx(1.82e9, rel=0.01)


def test_metrics_work_on_int8_models(helpers: Any) -> None:
    float_model, int8 = helpers.quantized_convnet()
    import torch.ao.nn.quantized as nnq

    assert any(isinstance(m, nnq.Conv2d) for m in int8.modules())
    assert any(isinstance(m, nnq.Linear) for m in int8.modules())
    # the same layers, with BN folded into the convolutions' (new) biases
    bn = sum(
        m.weight.numel() + m.bias.numel()
        for m in float_model.modules()
        if isinstance(m, nn.BatchNorm2d)
    )
    assert count_params(int8) == count_params(float_model) - bn // 2
    assert count_macs(int8, (1, 28, 28)) == count_macs(float_model, (1, 28, 28)) > 0
    assert serialized_size(int8) < 0.6 * serialized_size(float_model)  # zip overhead on tiny nets
    assert latency_ms(int8, (1, 28, 28), batch=2, warmup=1, repeats=3) > 0
    assert 0.0 <= sparsity(int8) < 0.2


def test_sparsity_counts_zero_weights() -> None:
    model = _known()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight[: m.weight.shape[0] // 2] = 0
    zeros = 4 * 27 + 4 * 9 + 2 * 8  # first half of the rows of each layer
    assert sparsity(model) == pytest.approx(zeros / (216 + 72 + 40))


def test_measure_reports_every_stable_field() -> None:
    data = build_data("mnist10k", [], {"limit": 64, "eval_limit": 64}, seed=0)
    model = build_model("convnet", [], {"width": 4}, in_channels=1, num_classes=10)
    figures = measure(model, data, warmup=1, repeats=2)
    for key in ("accuracy", "params", "macs", "size_bytes", "latency_ms_b1", "latency_ms_b32"):
        assert key in figures
    assert 0.0 <= figures["accuracy"] <= 1.0
    assert figures["params"] == count_params(model)
    assert figures["latency_ms_b32"] > 0 and figures["size_bytes"] > 0
    assert tuple(figures) == MEASURED_KEYS
    assert figures["dense_size_bytes"] == figures["size_bytes"] == serialized_size(model)
    assert figures["nm_pattern"] is None and figures["nm_conformance"] is None


def test_sparsity_fields_are_measured_on_the_model() -> None:
    from runtime.passes.prune_weights import prune_weights_model

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    dense = sparsity_fields(model)
    assert dense["sparsity"] == 0.0 and dense["dense_size_bytes"] == serialized_size(model)
    prune_weights_model(model, 0.8)
    sparse = sparsity_fields(model)
    assert sparse["sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert sparse["dense_size_bytes"] == dense["dense_size_bytes"]  # zeros take room...
    assert sparse["compressed_size_bytes"] < 0.6 * dense["compressed_size_bytes"]  # ...unzipped


def _passes() -> list[Any]:
    train = {"steps": 5}
    return [
        make_pass("train", id="000-train-student", subject="student", params=train),
        make_pass(
            "prune.weights",
            id="001-prune.weights-student",
            subject="student",
            params={"pattern": {"n": 2, "m": 4}, "exclude": ["0"]},
        ),
        make_pass("snapshot", id="002-snapshot-student", subject="student", params={"name": "d"}),
        make_pass("train", id="003-train-student", subject="student", params=train),
        make_pass("train", id="004-train-teacher", subject="teacher", params=train),
    ]


def test_the_nm_pattern_follows_the_lineage() -> None:
    passes = _passes()
    assert nm_lineage(passes, "student", until="000-train-student") is None
    held = nm_lineage(passes, "student", until="001-prune.weights-student")
    assert held is not None and str(held.pattern) == "2:4"
    assert nm_lineage(passes, "d") == held  # a snapshot inherits its model's history
    assert nm_lineage(passes, "student", until="003-train-student") == held
    assert nm_lineage(passes, "teacher") is None


def test_nm_conformance_is_reported_and_can_drop() -> None:
    from runtime.passes.prune_weights import prune_nm_model
    from runtime.passes.scopes import Scope

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))  # 6 is not a multiple of 4
    nm = nm_lineage(_passes(), "student")
    assert nm is not None
    prune_nm_model(model, 2, 4, Scope.of(nm))
    fields = sparsity_fields(model, nm)
    assert fields["nm_pattern"] == "2:4" and fields["nm_conformance"] == 1.0
    with torch.no_grad():
        model[2].weight[:2] = 1.0  # two rows of the one checked layer (4 rows) regrow
    assert sparsity_fields(model, nm)["nm_conformance"] == 0.5
