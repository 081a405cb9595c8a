"""timm and Hugging Face models as recipe models: compiled from a recipe, built through the
family registry with the data's classes, channels and image size, their outputs read as logits
everywhere (training, evaluation, ensembles, export), their failures KDR504 / KDR501.

Random weights and tiny configs only: nothing is downloaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from compiler import compile_source
from compiler.plan import Plan
from recipe_lang.diagnostics import KdrError
from runtime.data import DataBundle
from runtime.engine import TrainConfig, evaluate, fit
from runtime.export import export_model, load_exported, run_onnx
from runtime.models import Ensemble
from runtime.models.outputs import logits_of
from runtime.modelstore import ModelStore
from runtime.run.inputs import load_data
from runtime.run.preflight import preflight

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")

ROOT = Path(__file__).parents[2]
DATA = "data = mnist10k(batch_size=8, image_size=32, limit=32, eval_limit=16)\n"
#: A ViT of two layers of width 32 on 8x8 patches: 16 patches of a 32x32 image.
TINY_VIT = (
    "hf.ViTForImageClassification(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, "
    "intermediate_size=64, patch_size=8)"
)


def _setup(models: str, stages: str = "") -> tuple[Plan, DataBundle, ModelStore]:
    names = [line.split()[1] for line in models.strip().splitlines()]
    stages = stages or "\nthen ".join(f"train {n} for 1 step" for n in names)
    result = compile_source(DATA + models + stages)
    assert result.plan is not None, [d.message for d in result.diagnostics]
    data = load_data(result.plan)
    return result.plan, data, ModelStore(result.plan, data)


def _error(exc: pytest.ExceptionInfo[KdrError]) -> tuple[str, str, str]:
    d = exc.value.diagnostics[0]
    return d.code, d.message, " ".join(n.message for n in d.notes)


def test_the_compiler_accepts_library_prefixes_without_importing_them() -> None:
    code = (
        "import sys\nfrom compiler import compile_source\n"
        "r = compile_source('data = mnist10k()\\nmodel student = timm.resnet18()\\n"
        "model t = hf.ViTForImageClassification(hidden_size=32)\\n"
        'model u = hf.from_pretrained("d")\\ntrain t for 1 step\\n'
        "then distill student from t for 1 step\\nthen train u for 1 step')\n"
        "assert r.plan is not None, [d.message for d in r.diagnostics]\n"
        "assert not {'timm', 'transformers', 'torch'} & set(sys.modules), 'imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    bad = compile_source(DATA + "model student = timmy.resnet18()\ntrain student for 1 step")
    assert [d.code for d in bad.diagnostics] == ["KDR100"]
    bare = compile_source(DATA + "model student = timm.()\ntrain student for 1 step")
    assert bare.plan is None
    unprefixed = compile_source(DATA + "model student = vit_tiny_patch16_224()\n")
    (d,) = unprefixed.diagnostics
    assert d.code == "KDR100" and "`timm.<name>`" in d.notes[0].message


def test_timm_resnet18_is_wired_from_the_data() -> None:
    _, data, store = _setup("model student = timm.resnet18()\n")
    model = store.get("student")
    assert isinstance(model, timm.models.ResNet)
    assert model.conv1.in_channels == 1 and model.fc.out_features == 10
    assert model(data.example_batch(2)).shape == (2, 10)


def test_timm_vit_gets_the_data_image_size() -> None:
    """vit_tiny_patch16_224 on 32x32 images: 2x2 patches of 16 (timm's default 224 would
    reject the input)."""
    _, data, store = _setup("model student = timm.vit_tiny_patch16_224(depth=2)\n")
    model = store.get("student")
    assert tuple(model.patch_embed.grid_size) == (2, 2)
    assert model.patch_embed.proj.in_channels == 1
    assert model(data.example_batch(2)).shape == (2, 10)


def test_timm_call_arguments_win_over_the_data() -> None:
    _, _, store = _setup("model student = timm.resnet18(num_classes=4, in_chans=1)\n")
    assert store.get("student").fc.out_features == 4


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ("timm.resnt18()", "did you mean `timm.resnet18`"),
        ("timm.resnet18(3)", "keyword arguments only"),
        ("timm.resnet18(bogus_arg=1)", "bogus_arg"),
    ],
)
def test_timm_failures_are_kdr504(call: str, words: str) -> None:
    _, _, store = _setup(f"model student = {call}\n")
    with pytest.raises(KdrError) as exc:
        store.get("student")
    code, message, notes = _error(exc)
    assert code == "KDR504"
    assert words in message + " " + notes


@pytest.mark.parametrize(("call", "extra"), [("timm.resnet18()", "timm"), (TINY_VIT, "hf")])
def test_a_missing_library_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, call: str, extra: str
) -> None:
    _, _, store = _setup(f"model student = {call}\n")
    monkeypatch.setitem(sys.modules, "timm" if extra == "timm" else "transformers", None)
    with pytest.raises(KdrError) as exc:
        store.get("student")
    code, _, notes = _error(exc)
    assert code == "KDR504" and f"pip install 'kdr[{extra}]'" in notes


def test_hf_vit_from_a_config_is_wired_and_trains() -> None:
    _, data, store = _setup(f"model student = {TINY_VIT}\n")
    model = store.get("student")
    config = model.config
    assert (config.num_labels, config.num_channels, config.image_size) == (10, 1, 32)
    assert config.hidden_size == 32 and config.num_hidden_layers == 2
    out = model(data.example_batch(2))
    assert not isinstance(out, torch.Tensor) and logits_of(out).shape == (2, 10)
    before = [p.detach().clone() for p in model.parameters()]
    stats = fit(model, data, TrainConfig(steps=2, lr=0.01, progress=False))
    assert stats.steps == 2 and torch.isfinite(torch.tensor(stats.loss_last))
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert 0.0 <= evaluate(model, data) <= 1.0


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ("hf.ViTForImageClassification(hiden_size=32)", "did you mean `hidden_size`"),
        ("hf.VitForImageClassification()", "did you mean `hf.ViTForImageClassification`"),
        ("hf.ViTForImageClassification(3)", "keyword arguments"),
        ('hf.from_pretrained("no/such/dir")', "not a local Hugging Face model directory"),
    ],
)
def test_hf_failures_are_kdr504(call: str, words: str) -> None:
    _, _, store = _setup(f"model student = {call}\n")
    with pytest.raises(KdrError) as exc:
        store.get("student")
    code, message, notes = _error(exc)
    assert code == "KDR504"
    assert words in message + " " + notes


def _save_vit(folder: Path, labels: int, channels: int) -> torch.nn.Module:
    config = transformers.ViTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=8,
        image_size=32,
        num_channels=channels,
        num_labels=labels,
    )
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(config).eval()
    model.save_pretrained(str(folder))
    return model


def test_hf_from_pretrained_loads_a_local_directory(tmp_path: Path) -> None:
    saved = _save_vit(tmp_path / "vit", labels=10, channels=1)
    _, data, store = _setup(f'model student = hf.from_pretrained("{tmp_path / "vit"}")\n')
    model = store.get("student").eval()
    x = data.example_batch(2)
    with torch.no_grad():
        assert torch.allclose(logits_of(model(x)), saved(x).logits, atol=1e-5)
    assert not hasattr(model, "kdr_notes")


def test_hf_from_pretrained_fits_labels_and_channels(tmp_path: Path) -> None:
    saved = _save_vit(tmp_path / "vit", labels=5, channels=3)
    _, data, store = _setup(f'model student = hf.from_pretrained("{tmp_path / "vit"}")\n')
    model = store.get("student").eval()
    assert model.config.num_labels == 10 and model.classifier.out_features == 10
    assert "re-initialised for 10 labels (saved with 5)" in model.kdr_notes[0]
    stem = model.vit.embeddings.patch_embeddings.projection
    assert stem.in_channels == 1
    # the stem's filters are the saved ones averaged over the channels, not new ones
    old = saved.vit.embeddings.patch_embeddings.projection.weight
    assert torch.allclose(stem.weight, old.sum(1, keepdim=True) / 1)
    assert logits_of(model(data.example_batch(2))).shape == (2, 10)


def test_ensemble_of_hf_and_timm_averages_logits() -> None:
    _, data, store = _setup(f"model a = {TINY_VIT}\nmodel b = timm.resnet18()\n")
    a, b = store.get("a").eval(), store.get("b").eval()
    x = data.example_batch(2)
    with torch.no_grad():
        expected = (logits_of(a(x)) + b(x)) / 2
        assert torch.allclose(Ensemble([a, b])(x), expected, atol=1e-6)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "pt2"])
def test_hf_model_exports_its_logits(tmp_path: Path, fmt: str) -> None:
    pytest.importorskip("onnxruntime")
    _, data, store = _setup(f"model student = {TINY_VIT}\n")
    model = store.get("student").eval()
    x = data.example_batch(4)
    path = export_model(model, fmt, tmp_path / f"s.{fmt}", x[:2])
    loaded = load_exported(fmt, path)
    with torch.no_grad():
        got = run_onnx(loaded, x) if fmt == "onnx" else loaded(x)
        expected = logits_of(model(x))
    assert isinstance(got, torch.Tensor) and got.shape == (4, 10)
    assert torch.allclose(got, expected, atol=1e-4)


def test_a_width_that_is_not_the_data_classes_is_kdr501() -> None:
    plan, data, store = _setup(
        f"model student = timm.resnet18(num_classes=1000)\n"
        f"model h = {TINY_VIT[:-1]}, num_labels=3)\n"
    )
    diags = preflight(plan, data, store)
    by_model = {d.message.split("`")[1]: d for d in diags}
    assert {d.code for d in diags} == {"KDR501"} and set(by_model) == {"student", "h"}
    assert "gives 1000 outputs but the data has 10 classes" in by_model["student"].message
    assert "num_classes=10" in by_model["student"].notes[0].message
    assert "num_labels=10" in by_model["h"].notes[0].message


@pytest.mark.slow
def test_kdr_run_distills_an_hf_student_from_a_timm_teacher(tmp_path: Path) -> None:
    """End to end: train a timm teacher, distill a tiny HF ViT from it, evaluate, export."""
    recipe = tmp_path / "r.kdr"
    recipe.write_text(
        DATA + "model teacher = timm.resnet18()\n"
        f"model student = {TINY_VIT}\n"
        "train teacher for 2 steps\nthen distill student from teacher for 2 steps\n"
        'then evaluate student\nthen export student onnx "s.onnx"\n',
        encoding="utf-8",
    )
    from kdr.cli import main

    assert main(["run", str(recipe), "--run-dir", str(tmp_path / "run"), "--quiet"]) == 0
    assert (tmp_path / "run" / "s.onnx").is_file()
