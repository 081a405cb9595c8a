"""build_model, channel adaptation, load_weights, Ensemble: and their KDR504 failures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from recipe_lang.diagnostics import KdrError
from runtime.checkpoint import save_checkpoint
from runtime.models import (
    Ensemble,
    adapt_input_channels,
    build_model,
    load_weights,
    zoo_names,
)

HERE = Path(__file__).parent
X = torch.randn(2, 1, 28, 28)


def _code(exc: pytest.ExceptionInfo[KdrError]) -> str:
    return exc.value.diagnostics[0].code


@pytest.fixture
def factory_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


def test_convnet_one_channel_ten_classes() -> None:
    model = build_model("convnet", [], {"width": 8}, in_channels=1, num_classes=10)
    assert model(X).shape == (2, 10)
    assert next(model.modules()) is model
    assert isinstance(torch.fx.symbolic_trace(model), torch.fx.GraphModule)


def test_convnet_depth_and_user_num_classes_win() -> None:
    model = build_model(
        "convnet", [], {"width": 4, "depth": 2, "num_classes": 3}, in_channels=1, num_classes=10
    )
    assert model(X).shape == (2, 3)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8]


@pytest.mark.parametrize(
    "name", ["resnet18", "torchvision.resnet18", "torchvision.models.resnet18"]
)
def test_resnet18_adapts_its_stem(name: str) -> None:
    model = build_model(name, [], {}, in_channels=1, num_classes=10)
    assert model.conv1.in_channels == 1
    assert model.fc.out_features == 10
    assert model(X).shape == (2, 10)


def test_pretrained_stem_adaptation_is_equivalent_on_replicated_grayscale() -> None:
    torch.manual_seed(0)
    rgb = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())
    gray = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())
    gray.load_state_dict(rgb.state_dict())
    assert adapt_input_channels(gray, 1, pretrained=True)
    x = torch.randn(2, 1, 8, 8)
    assert torch.allclose(gray(x), rgb(x.expand(-1, 3, -1, -1)), atol=1e-5)


def test_factory_gets_num_classes_and_in_channels(factory_path: None) -> None:
    model = build_model(
        "kdr_test_factory:tiny_net", [], {"hidden": 5}, in_channels=1, num_classes=7
    )
    assert model(X).shape == (2, 7)


def test_factory_without_channel_argument_is_adapted(factory_path: None) -> None:
    model = build_model("kdr_test_factory:rgb_net", [], {}, in_channels=1, num_classes=4)
    assert model[0].in_channels == 1
    assert model(X).shape == (2, 4)


def test_unknown_constructor_suggests_a_name() -> None:
    with pytest.raises(KdrError) as exc:
        build_model("resnet81", [], {}, in_channels=1, num_classes=10)
    assert _code(exc) == "KDR504"
    assert "did you mean `resnet18`" in exc.value.diagnostics[0].notes[0].message


@pytest.mark.parametrize(
    ("constructor", "kwargs"),
    [
        ("resnet18", {"bogus": 1}),
        ("convnet", {"width": 0}),
        ("convnet", {"widht": 16}),
        ("kdr_test_factory:missing", {}),
        ("kdr_test_factory:NOT_CALLABLE", {}),
        ("no_such_module_kdr:fn", {}),
        ("kdr_test_factory:tiny_net", {"nope": 2}),
    ],
)
def test_bad_constructors_and_arguments_are_kdr504(
    factory_path: None, constructor: str, kwargs: dict[str, object]
) -> None:
    with pytest.raises(KdrError) as exc:
        build_model(constructor, [], kwargs, in_channels=1, num_classes=10)
    assert _code(exc) == "KDR504"


def test_zoo_names_lists_classification_models() -> None:
    names = zoo_names()
    assert "resnet18" in names and "mobilenet_v2" in names
    assert names == sorted(names)


def test_ensemble_averages_logits() -> None:
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    x = torch.randn(4, 3)
    assert torch.allclose(Ensemble([a, b])(x), (a(x) + b(x)) / 2)


def _convnet(width: int = 8) -> nn.Module:
    return build_model("convnet", [], {"width": width}, in_channels=1, num_classes=10)


def test_load_weights_round_trip_state_dict_and_checkpoint(tmp_path: Path) -> None:
    source = _convnet()
    plain = tmp_path / "w.pt"
    torch.save(source.state_dict(), plain)
    ckpt = tmp_path / "c.pt"
    save_checkpoint(ckpt, {"state_dict": source.state_dict()})
    source.eval()
    for path in (plain, ckpt):
        target = load_weights(_convnet(), path).eval()
        assert torch.equal(target(X), source(X))


def test_load_weights_failures_are_kdr504(tmp_path: Path) -> None:
    with pytest.raises(KdrError) as exc:
        load_weights(_convnet(), tmp_path / "missing.pt")
    assert _code(exc) == "KDR504" and "missing.pt" in exc.value.diagnostics[0].message

    not_state = tmp_path / "list.pt"
    torch.save([1, 2, 3], not_state)
    with pytest.raises(KdrError) as exc:
        load_weights(_convnet(), not_state)
    assert _code(exc) == "KDR504" and "no state dict" in exc.value.diagnostics[0].message

    wide = tmp_path / "wide.pt"
    torch.save(_convnet(width=16).state_dict(), wide)
    with pytest.raises(KdrError) as exc:
        load_weights(_convnet(width=8), wide)
    assert _code(exc) == "KDR504"
    message = exc.value.diagnostics[0].message
    assert "wide.pt" in message and "shape mismatch" in message and "0.0.weight" in message


def test_load_weights_refuses_pickled_code(tmp_path: Path) -> None:
    path = tmp_path / "module.pt"
    torch.save(_convnet(), path)  # a whole pickled module, not a state dict
    with pytest.raises(KdrError) as exc:
        load_weights(_convnet(), path)
    assert _code(exc) == "KDR504"
