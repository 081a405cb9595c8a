"""The built-in mnist10k: split, normalisation, seeded shuffling, limit, augmentation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from recipe_lang.diagnostics import KdrError
from runtime.data import build_data, random_crop_flip


def _labels(batches: object) -> torch.Tensor:
    return torch.cat([y for _, y in batches])  # type: ignore[attr-defined]


def test_mnist10k_split_sizes_and_shapes() -> None:
    data = build_data("mnist10k", [], {}, seed=0)
    assert (data.train_size, data.eval_size) == (8000, 2000)
    assert (data.in_channels, data.num_classes, data.image_size) == (1, 10, 28)
    x, y = next(data.train_batches())
    assert x.shape == (128, 1, 28, 28) and y.dtype == torch.int64
    assert sum(len(y) for _, y in data.eval_batches()) == 2000
    assert sum(len(y) for _, y in data.train_batches()) == 8000
    # normalised: the eval split has roughly zero mean and unit spread
    ex = torch.cat([x for x, _ in data.eval_batches()])
    assert abs(ex.mean().item()) < 0.1 and 0.8 < ex.std().item() < 1.2


def test_eval_split_is_the_last_2000_images_in_order() -> None:
    import numpy as np

    data = build_data("mnist10k", [], {}, seed=0)
    raw = np.load(Path(__file__).parents[2] / "runtime" / "assets" / "mnist10k.npz")["labels"]
    assert torch.equal(_labels(data.eval_batches()), torch.from_numpy(raw[8000:].astype("int64")))


def test_shuffling_is_seeded() -> None:
    data = build_data("mnist10k", [], {"batch_size": 64}, seed=0)
    a = _labels(data.train_batches(torch.Generator().manual_seed(3)))
    b = _labels(data.train_batches(torch.Generator().manual_seed(3)))
    c = _labels(data.train_batches(torch.Generator().manual_seed(4)))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(a.sort().values, c.sort().values)  # same samples, other order


def test_limit_and_eval_limit() -> None:
    data = build_data("mnist10k", [], {"limit": 300, "eval_limit": 100, "batch_size": 64}, seed=0)
    assert (data.train_size, data.eval_size) == (300, 100)
    assert sum(len(y) for _, y in data.train_batches()) == 300
    assert data.steps_per_epoch == 5


def test_augment_changes_images_but_not_labels() -> None:
    plain = build_data("mnist10k", [], {"limit": 256}, seed=0)
    aug = build_data("mnist10k", [], {"limit": 256, "augment": True}, seed=0)
    (xp, yp), (xa, ya) = (
        next(d.train_batches(torch.Generator().manual_seed(0))) for d in (plain, aug)
    )
    assert torch.equal(yp, ya)
    assert xa.shape == xp.shape and not torch.equal(xa, xp)


def test_random_crop_is_a_shifted_window() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), padding=1)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    windows = [padded[..., i : i + 4, j : j + 4] for i in range(3) for j in range(3)]
    assert any(torch.equal(out, w) for w in windows)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("mnist10", {}),
        ("mnist10k", {"batch_size": 0}),
        ("mnist10k", {"bogus": 1}),
        ("cifar10", {}),
        ("cifar10", {"root": "/nonexistent/kdr-data"}),
        ("imagefolder", {"eval": "/nonexistent/val"}),
        ("no_such_module_kdr:fn", {}),
    ],
)
def test_bad_data_is_kdr504(name: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(KdrError) as exc:
        build_data(name, [], kwargs, seed=0)
    assert exc.value.diagnostics[0].code == "KDR504"


def test_unknown_dataset_suggests_a_name() -> None:
    with pytest.raises(KdrError) as exc:
        build_data("mnist10", [], {}, seed=0)
    assert "mnist" in exc.value.diagnostics[0].notes[0].message


def test_imagefolder_reads_class_folders(tmp_path: Path) -> None:
    from PIL import Image

    for split in ("train", "val"):
        for label in ("cat", "dog"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (10, 10), (40 * i, 80, 120)).save(folder / f"{i}.png")
    data = build_data(
        "imagefolder",
        [str(tmp_path / "train")],
        {"eval": str(tmp_path / "val"), "image_size": 8, "batch_size": 4, "augment": True},
        seed=0,
    )
    assert (data.in_channels, data.num_classes, data.train_size, data.eval_size) == (3, 2, 6, 6)
    x, y = next(data.train_batches())
    assert x.shape == (4, 3, 8, 8) and set(y.tolist()) <= {0, 1}
    assert data.example_batch(5).shape == (5, 3, 8, 8)


def test_factory_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    data = build_data("kdr_test_factory:tiny_data", [], {"n": 20, "batch_size": 8}, seed=0)
    assert (data.in_channels, data.num_classes, data.image_size) == (1, 3, 12)
    assert sum(len(y) for _, y in data.train_batches()) == 20
    with pytest.raises(KdrError) as exc:
        build_data("kdr_test_factory:tiny_data", [], {"bogus": 1}, seed=0)
    assert exc.value.diagnostics[0].code == "KDR504"
