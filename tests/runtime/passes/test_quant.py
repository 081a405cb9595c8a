"""int8 passes: real int8 modules, agreement with fp32 on a trained net, QAT, replay, KDR503."""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from importlib import resources

import numpy as np
import pytest
import torch
from torch import nn

import runtime.passes.quant  # noqa: F401  (registers the quant.* passes)
from recipe_lang.diagnostics import KdrError
from runtime.passes.base import PassContext, replay_pass, run_pass
from runtime.passes.quant_backends import QuantConfig, choose_engine, config, int8_modules


def small_convnet() -> nn.Sequential:
    """conv-bn-relu x3, pool, linear: the kind of student kdr quantizes."""

    def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(1, 16, 2),
        *block(16, 32, 2),
        *block(32, 32, 1),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def mnist() -> tuple[torch.Tensor, torch.Tensor]:
    path = resources.files("runtime") / "assets" / "mnist10k.npz"
    with resources.as_file(path) as p, np.load(p) as d:
        x = torch.from_numpy(d["images"]).float().div(255).sub(0.1307).div(0.3081)
        return x.unsqueeze(1), torch.from_numpy(d["labels"]).long()


def batches(
    x: torch.Tensor, y: torch.Tensor, size: int = 64
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for i in range(0, len(x), size):
        yield x[i : i + size], y[i : i + size]


@pytest.fixture(scope="module")
def data() -> dict[str, torch.Tensor]:
    x, y = mnist()
    return {"xtr": x[:8000], "ytr": y[:8000], "xev": x[8000:], "yev": y[8000:]}


@pytest.fixture(scope="module")
def trained(data: dict[str, torch.Tensor]) -> nn.Module:
    """A tiny convnet trained for 250 steps (~93% on the held-out digits, a few seconds)."""
    torch.manual_seed(0)
    net = small_convnet()
    opt = torch.optim.Adam(net.parameters(), 5e-3)
    g = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    # One thread: tiny kernels gain little from two, and OpenMP spin-waits badly when the CPU
    # is shared with other jobs (10x slower steps were observed).
    torch.set_num_threads(1)
    try:
        for _ in range(250):
            idx = torch.randint(0, 8000, (64,), generator=g)
            loss = nn.functional.cross_entropy(net(data["xtr"][idx]), data["ytr"][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    net.eval()
    with torch.no_grad():
        acc = (net(data["xev"]).argmax(1) == data["yev"]).float().mean().item()
    assert acc > 0.9, f"the fixture net did not learn ({acc:.3f})"
    return net


def ctx_for(data: dict[str, torch.Tensor]) -> PassContext:
    return PassContext(
        example_inputs=data["xev"][:8], batches=lambda: batches(data["xtr"], data["ytr"])
    )


def static_int8(net: nn.Module, data: dict[str, torch.Tensor], **params: str) -> nn.Module:
    ctx = ctx_for(data)
    model = run_pass("quant.prepare", copy.deepcopy(net), {"mode": "static", **params}, ctx).module
    model = run_pass("quant.calibrate", model, {"batches": 16}, ctx).module
    return run_pass("quant.convert", model, {}, ctx).module


@torch.no_grad()
def agreement(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    return (a(x).argmax(1) == b(x).argmax(1)).float().mean().item()


@pytest.mark.parametrize("granularity", ["per_channel", "per_tensor"])
def test_static_int8_is_real_int8_and_agrees(trained, data, granularity):
    q = static_int8(trained, data, granularity=granularity)
    counts = int8_modules(q)
    # conv+bn+relu fuse into ConvReLU2d; the head is a QuantizedLinear: no fake quant is left.
    assert counts.get("ConvReLU2d") == 3, counts
    assert counts.get("Linear") == 1, counts
    assert not any("FakeQuantize" in type(m).__name__ for m in q.modules())
    assert isinstance(q, torch.fx.GraphModule)
    assert any(n.target == torch.quantize_per_tensor for n in q.graph.nodes)
    agree = agreement(trained, q, data["xev"])
    assert agree >= 0.98, agree


def test_dynamic_int8_quantizes_linear_layers(data):
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)).eval()
    ctx = ctx_for(data)
    model = run_pass("quant.prepare", copy.deepcopy(mlp), {"mode": "dynamic"}, ctx).module
    calibrated = run_pass("quant.calibrate", model, {"batches": 4}, ctx)
    assert calibrated.info["batches"] == 0  # dynamic scales are computed at run time
    q = run_pass("quant.convert", calibrated.module, {}, ctx).module
    assert int8_modules(q) == {"DynamicLinearReLU": 1, "DynamicLinear": 1}
    assert torch.allclose(q(data["xev"][:64]), mlp(data["xev"][:64]), atol=0.05)


def test_qat_trains_then_converts(trained, data):
    ctx = ctx_for(data)
    model = run_pass("quant.prepare_qat", copy.deepcopy(trained), {}, ctx).module
    assert any("FakeQuantize" in type(m).__name__ for m in model.modules())
    model.train()
    opt = torch.optim.SGD(model.parameters(), 0.05)
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, 8000, (128,), generator=g)
    x, y = data["xtr"][idx], data["ytr"][idx]
    losses = []
    for _ in range(8):  # fit one batch: the loss must fall through the fake-quant modules
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    q = run_pass("quant.convert", model, {}, ctx).module
    assert int8_modules(q).get("ConvReLU2d") == 3
    # int8 must compute what the fake-quant model trained to compute (observers frozen).
    model.apply(torch.ao.quantization.disable_observer).eval()
    assert agreement(model, q, data["xev"]) >= 0.98


def _roundtrip(sd: dict) -> dict:
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("mode", ["static", "dynamic", "qat"])
def test_int8_checkpoint_replays_onto_a_fresh_model(trained, data, mode):
    ctx = ctx_for(data)
    ops: list[tuple[str, dict]] = (
        [("quant.prepare_qat", {})]
        if mode == "qat"
        else [("quant.prepare", {"mode": mode}), ("quant.calibrate", {"batches": 4})]
    )
    ops.append(("quant.convert", {}))
    model: nn.Module = copy.deepcopy(trained)
    records = []
    for op, params in ops:
        result = run_pass(op, model, params, ctx)
        model = result.module
        records.append((op, result.record))
    state = _roundtrip(model.state_dict())

    fresh: nn.Module = small_convnet()  # different random weights, same architecture
    for op, record in records:
        fresh = replay_pass(op, fresh, record)
    fresh.load_state_dict(state)
    x = data["xev"][:64]
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


@pytest.mark.parametrize(
    "cfg",
    [
        QuantConfig(),
        QuantConfig(mode="dynamic", granularity="per_tensor"),
        QuantConfig(mode="qat", engine="qnnpack"),
    ],
)
def test_quant_config_round_trips_through_json(cfg):
    import json

    assert QuantConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_bad_config_values_are_diagnostics():
    with pytest.raises(KdrError) as exc:
        QuantConfig(mode="int3")
    assert exc.value.diagnostics[0].code == "KDR103"


def test_engine_follows_the_machine(monkeypatch):
    monkeypatch.setattr(config.platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(config, "supported_engines", lambda: ["qnnpack"])
    assert choose_engine() == "qnnpack"
    monkeypatch.setattr(config.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(config, "supported_engines", lambda: ["fbgemm", "x86"])
    assert choose_engine() == "x86"


def test_no_engine_is_kdr503(monkeypatch, data):
    monkeypatch.setattr(config, "supported_engines", lambda: [])
    with pytest.raises(KdrError) as exc:
        run_pass("quant.prepare", small_convnet().eval(), {}, ctx_for(data))
    diag = exc.value.diagnostics[0]
    assert diag.code == "KDR503"
    assert any(n.kind == "help" and "QNNPACK" in n.message for n in diag.notes)


def test_unavailable_requested_engine_is_kdr503(monkeypatch):
    monkeypatch.setattr(config, "supported_engines", lambda: ["qnnpack"])
    with pytest.raises(KdrError) as exc:
        choose_engine("fbgemm")
    assert exc.value.diagnostics[0].code == "KDR503"
    assert "fbgemm" in exc.value.diagnostics[0].message


def test_calibrate_without_data_is_kdr207(data):
    ctx = PassContext(example_inputs=data["xev"][:8])
    model = run_pass("quant.prepare", small_convnet().eval(), {}, ctx).module
    with pytest.raises(KdrError) as exc:
        run_pass("quant.calibrate", model, {"batches": 2}, ctx)
    assert exc.value.diagnostics[0].code == "KDR207"
