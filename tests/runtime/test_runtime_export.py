"""Every export format reloads and agrees with the PyTorch model."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import torch

from recipe_lang.diagnostics import KdrError
from runtime.checkpoint import load_checkpoint
from runtime.export import export_model, load_exported, run_onnx
from runtime.models import build_model, load_weights


@pytest.fixture
def helpers(monkeypatch: pytest.MonkeyPatch) -> Any:
    """tests/runtime/kdr_test_factory.py, imported whatever pytest's import mode."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    return importlib.import_module("kdr_test_factory")


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_model("convnet", [], {"width": 8}, in_channels=1, num_classes=10)
    with torch.no_grad():  # non-trivial BN statistics
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.mark.parametrize("fmt", ["torchscript", "pt2", "onnx"])
def test_export_reloads_and_matches(model: torch.nn.Module, tmp_path: Path, fmt: str) -> None:
    x = torch.randn(5, 1, 28, 28)
    path = export_model(model, fmt, tmp_path / "sub" / f"m.{fmt}", x[:1])
    assert path.is_file()
    loaded = load_exported(fmt, path)
    with torch.no_grad():
        expected = model(x)
        got = run_onnx(loaded, x) if fmt == "onnx" else loaded(x)
    assert got.shape == expected.shape  # batch axis stays dynamic
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_checkpoint_export_reloads(model: torch.nn.Module, tmp_path: Path) -> None:
    path = export_model(
        model,
        "checkpoint",
        tmp_path / "m.ckpt",
        torch.randn(1, 1, 28, 28),
        extra={"model": {"spec": {"constructor": "convnet"}}},
    )
    assert load_checkpoint(path)["model"]["spec"]["constructor"] == "convnet"
    fresh = build_model("convnet", [], {"width": 8}, in_channels=1, num_classes=10)
    load_weights(fresh, path).eval()
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(fresh(x), model(x))


def test_int8_torchscript_export(tmp_path: Path, helpers: Any) -> None:
    _, int8 = helpers.quantized_convnet()
    x = torch.randn(4, 1, 28, 28)
    loaded = load_exported("torchscript", export_model(int8, "torchscript", tmp_path / "q.ts", x))
    assert torch.allclose(loaded(x), int8(x), atol=1e-5)


def test_unknown_format_is_a_diagnostic(model: torch.nn.Module, tmp_path: Path) -> None:
    with pytest.raises(KdrError) as exc:
        export_model(model, "tflite", tmp_path / "m", torch.randn(1, 1, 28, 28))
    assert exc.value.diagnostics[0].code == "KDR103"
