"""The preflight runs every model once on the data before any training: an input the model
cannot take is KDR507 with the image size that works, outputs that are not the data's classes
(or not logits at all) are KDR501. Random weights, one forward each."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from compiler import compile_source
from recipe_lang.diagnostics import Diagnostic, KdrError
from runtime.models.outputs import logits_of
from runtime.modelstore import ModelStore
from runtime.run.inputs import load_data
from runtime.run.model_io import smallest_side
from runtime.run.preflight import preflight

MNIST = "data = mnist10k(batch_size=8, limit=32, eval_limit=16)\n"


def _preflight(source: str) -> list[Diagnostic]:
    result = compile_source(source)
    assert result.plan is not None, [d.message for d in result.diagnostics]
    data = load_data(result.plan)
    return preflight(result.plan, data, ModelStore(result.plan, data))


@pytest.fixture
def user_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``kdr_io_models``: factories whose models misbehave in one way each."""
    (tmp_path / "kdr_io_models.py").write_text(
        textwrap.dedent(
            '''
            import torch
            from torch import nn


            class Net(nn.Module):
                """A tiny classifier; `out` says what its forward returns."""

                def __init__(self, classes, out="tensor"):
                    super().__init__()
                    self.out = out
                    self.body = nn.Sequential(
                        nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, classes),
                    )

                def forward(self, x):
                    if self.out == "fail":
                        raise ValueError("this model only takes audio")
                    y = self.body(x)
                    if self.out == "dict":
                        return {"logits": y, "features": x}
                    if self.out == "scores":
                        return {"scores": y}
                    return y


            def seven():  # takes no num_classes: always 7 outputs
                return Net(7)


            def fitted(num_classes=10, out="tensor"):
                return Net(num_classes, out)
            '''
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))


#: Building convnext_tiny (28M parameters) alone takes seconds: the slow case.
@pytest.mark.parametrize(
    "name", [pytest.param("convnext_tiny", marks=pytest.mark.slow), "densenet121"]
)
def test_a_model_that_downsamples_mnist_to_nothing_is_kdr507(name: str) -> None:
    prune = "then prune student 50% channels with lr 0.01 for 1 step\n"
    diags = _preflight(MNIST + f"model student = {name}()\ntrain student for 1 step\n" + prune)
    (d,) = diags
    assert d.code == "KDR507"
    assert f"`student` ({name}) cannot take the data's images (1x28x28)" in d.message
    assert d.span is not None and d.span.line == 3
    help_text = d.notes[0].message
    assert "runs on 32x32 images, the smallest size kdr tried that works" in help_text
    fixed = "mnist10k(batch_size=8, limit=32, eval_limit=16, image_size=32)"
    assert f"use `{fixed}`" in help_text
    if name == "densenet121":  # the suggested fix passes the same check (once: builds are slow)
        assert (
            _preflight(f"data = {fixed}\nmodel student = {name}()\ntrain student for 1 step\n")
            == []
        )


def test_smallest_side_is_the_first_size_that_runs() -> None:
    # two 2x2 poolings of a 3x3 kernel's output: needs a side of at least 6 after the conv
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(8), nn.MaxPool2d(8), nn.Flatten())
    assert smallest_side(model, torch.zeros(2, 1, 28, 28)) == 96
    assert smallest_side(model, torch.zeros(2, 1, 28)) is None
    assert model.training  # the mode is restored


def test_a_model_that_fails_at_every_size_says_so(user_models: None) -> None:
    diags = _preflight(
        MNIST + 'model student = "kdr_io_models:fitted"(out="fail")\ntrain student for 1 step\n'
    )
    (d,) = diags
    assert d.code == "KDR507" and "this model only takes audio" in d.message
    assert "fails on every image size kdr tried" in d.notes[0].message


def test_a_data_factory_gets_advice_on_its_images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # kdr_test_factory: 12x12 images
    diags = _preflight(
        'data = "kdr_test_factory:tiny_data"(n=20)\nmodel student = densenet121()\n'
        "train student for 1 step\n"
    )
    (d,) = diags
    assert d.code == "KDR507"
    assert "make `kdr_test_factory:tiny_data` return images of at least 32x32" in d.notes[0].message


def test_a_factory_that_ignores_num_classes_is_kdr501_even_without_a_teacher(
    user_models: None,
) -> None:
    diags = _preflight(
        MNIST + 'model student = "kdr_io_models:seven"()\ntrain student for 1 step\n'
    )
    (d,) = diags
    assert d.code == "KDR501"
    assert d.message == "`student` gives 7 outputs but the data has 10 classes"
    assert "factory must build 10 outputs" in d.notes[0].message


def test_teacher_and_student_of_other_widths_are_kdr501() -> None:
    diags = _preflight(
        MNIST
        + "model teacher = convnet(width=4, num_classes=5)\nmodel student = convnet(width=4)\n"
        "train teacher for 1 step\nthen distill student from teacher for 1 step\n"
    )
    assert [(d.code, d.message) for d in diags] == [
        ("KDR501", "`teacher` gives 5 outputs but the data has 10 classes")
    ]


def test_dict_outputs_are_read_and_unreadable_ones_are_kdr501(user_models: None) -> None:
    call = '"kdr_io_models:fitted"'
    assert (
        _preflight(MNIST + f'model student = {call}(out="dict")\ntrain student for 1 step\n') == []
    )
    (d,) = _preflight(MNIST + f'model student = {call}(out="scores")\ntrain student for 1 step\n')
    assert d.code == "KDR501"
    assert d.message.startswith("`student`'s forward returned a mapping without `logits`")


def test_logits_of_rule() -> None:
    t = torch.zeros(2, 3)
    assert logits_of(t) is t
    assert logits_of({"logits": t}) is t
    assert logits_of((t, torch.ones(1))) is t
    assert logits_of([{"logits": t}]) is t
    for bad in (None, (), "logits", {"loss": t}):
        with pytest.raises(KdrError) as exc:
            logits_of(bad)
        assert exc.value.diagnostics[0].code == "KDR501"
