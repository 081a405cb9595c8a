"""`val=` on every data source: a seeded validation split carved out of the training data
(or, for `imagefolder`, a folder of its own), never augmented, in order; bad values are KDR504."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from recipe_lang.diagnostics import KdrError
from runtime.data import DataBundle, build_data
from runtime.data.augment import IMAGENET_MEAN, IMAGENET_STD, MNIST_MEAN, MNIST_STD


def _rows(x: torch.Tensor, pool: torch.Tensor) -> list[int]:
    """The index in ``pool`` of every image of ``x`` (each appears exactly once)."""
    same = (x.flatten(1)[:, None, :] == pool.flatten(1)[None, :, :]).all(-1)
    assert bool((same.sum(1) == 1).all())
    return same.float().argmax(1).tolist()


def _val(data: DataBundle) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*data.val_batches(), strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_mnist10k_carves_a_seeded_disjoint_validation_split() -> None:
    whole = build_data("mnist10k", [], {"limit": 200, "eval_limit": 40}, seed=0)
    data = build_data("mnist10k", [], {"limit": 200, "eval_limit": 40, "val": 50}, seed=0)
    assert not whole.has_val and whole.val_size == 0
    assert data.has_val and (data.train_size, data.val_size, data.eval_size) == (150, 50, 40)
    assert data.train_tensors is not None and whole.train_tensors is not None
    pool = whole.train_tensors[0]
    train_rows = _rows(data.train_tensors[0], pool)
    x_val, y_val = _val(data)
    val_rows = _rows(x_val, pool)
    assert sorted(train_rows + val_rows) == list(range(200))  # disjoint, nothing lost
    assert val_rows == sorted(val_rows)  # in the dataset's order
    assert torch.equal(y_val, whole.train_tensors[1][val_rows])
    # the evaluation split is untouched
    pairs = zip(data.eval_batches(), whole.eval_batches(), strict=True)
    assert all(torch.equal(a[0], b[0]) for a, b in pairs)
    # the data seed draws the split: the same seed, the same split; another, another
    again = build_data("mnist10k", [], {"limit": 200, "val": 50}, seed=0)
    other = build_data("mnist10k", [], {"limit": 200, "val": 50}, seed=1)
    assert torch.equal(_val(again)[0], x_val)
    assert not torch.equal(_val(other)[0], x_val)
    # training batches cover exactly the rest
    seen = torch.cat([x for x, _ in data.train_batches()])
    assert sorted(_rows(seen, pool)) == sorted(train_rows)


def test_validation_batches_are_never_augmented() -> None:
    plain = build_data("mnist10k", [], {"limit": 64, "val": 16}, seed=0)
    augmented = build_data("mnist10k", [], {"limit": 64, "val": 16, "augment": True}, seed=0)
    assert torch.equal(_val(plain)[0], _val(augmented)[0])


def _image_folder(root: Path, counts: dict[str, int], start: int) -> int:
    """Class folders of solid images whose red value is a unique id (from ``start``)."""
    from PIL import Image

    ident = start
    for label, n in counts.items():
        folder = root / label
        folder.mkdir(parents=True)
        for _ in range(n):
            Image.new("RGB", (8, 8), (ident, 90, 160)).save(folder / f"{ident}.png")
            ident += 1
    return ident


def _ids(batches: Any) -> list[int]:
    out: list[int] = []
    for x, _ in batches:
        red = x[:, 0, 4, 4] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
        out += [round(float(v) * 255) for v in red]
    return out


def test_imagefolder_carves_or_reads_a_validation_split(tmp_path: Path) -> None:
    end = _image_folder(tmp_path / "train", {"cat": 5, "dog": 5}, 10)
    _image_folder(tmp_path / "test", {"cat": 2, "dog": 2}, 100)
    _image_folder(tmp_path / "held", {"cat": 1, "dog": 2}, 200)
    common = {"eval": str(tmp_path / "test"), "image_size": 8, "batch_size": 4}
    train = [str(tmp_path / "train")]
    data = build_data("imagefolder", train, {**common, "val": 3}, seed=0)
    assert (data.train_size, data.val_size, data.eval_size) == (7, 3, 4)
    val_ids = _ids(data.val_batches())
    train_ids = _ids(data.train_batches())
    assert sorted(val_ids + train_ids) == list(range(10, end))
    assert val_ids == sorted(val_ids)
    assert _ids(data.eval_batches()) == [100, 101, 102, 103]
    same = build_data("imagefolder", train, {**common, "val": 3, "augment": True}, seed=0)
    assert _ids(same.val_batches()) == val_ids  # seeded, and read without augmentation
    other = build_data("imagefolder", train, {**common, "val": 3}, seed=5)
    assert _ids(other.val_batches()) != val_ids
    folder = build_data("imagefolder", train, {**common, "val": str(tmp_path / "held")}, seed=0)
    assert (folder.train_size, folder.val_size, folder.eval_size) == (10, 3, 4)
    assert _ids(folder.val_batches()) == [200, 201, 202]


def _idx_files(raw: Path, split: str, values: list[int]) -> None:
    """An MNIST split in torchvision's raw IDX format: solid 28x28 digits of ``values``."""
    raw.mkdir(parents=True, exist_ok=True)
    n = len(values)
    head = (2051).to_bytes(4, "big") + n.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    pixels = b"".join(bytes([v]) * 28 * 28 for v in values)
    (raw / f"{split}-images-idx3-ubyte").write_bytes(head + pixels)
    labels = bytes(v % 10 for v in values)
    (raw / f"{split}-labels-idx1-ubyte").write_bytes(
        (2049).to_bytes(4, "big") + n.to_bytes(4, "big") + labels
    )


def test_torchvision_sets_carve_a_validation_split(tmp_path: Path) -> None:
    _idx_files(tmp_path / "MNIST" / "raw", "train", [10 * i for i in range(20)])
    _idx_files(tmp_path / "MNIST" / "raw", "t10k", [5, 15, 25])
    kwargs: dict[str, Any] = {"root": str(tmp_path), "batch_size": 4, "val": 6, "limit": 18}

    def ids(batches: Any) -> list[int]:
        return [round((float(x[0, 14, 14]) * MNIST_STD + MNIST_MEAN) * 255) for x in batches]

    def images(batches: Any) -> list[torch.Tensor]:
        return [x for xs, _ in batches for x in xs]

    data = build_data("mnist", [], kwargs, seed=0)
    assert (data.train_size, data.val_size, data.eval_size) == (12, 6, 3)
    val_ids = ids(images(data.val_batches()))
    assert sorted(val_ids + ids(images(data.train_batches()))) == [10 * i for i in range(18)]
    assert val_ids == sorted(val_ids)
    assert ids(images(data.eval_batches())) == [5, 15, 25]
    augmented = build_data("mnist", [], {**kwargs, "augment": True}, seed=0)
    assert all(  # the same images, read with the evaluation transform
        torch.equal(a, b)
        for a, b in zip(images(augmented.val_batches()), images(data.val_batches()), strict=True)
    )
    assert ids(images(build_data("mnist", [], kwargs, seed=3).val_batches())) != val_ids


def test_factory_data_carves_a_validation_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    data = build_data("kdr_test_factory:tiny_data", [], {"n": 20, "val": 5}, seed=0)
    assert (data.train_size, data.val_size) == (15, 5)
    val_x = torch.cat([x for x, _ in data.val_batches()])
    train_x = torch.cat([x for x, _ in data.train_batches()])
    whole_data = build_data("kdr_test_factory:tiny_data", [], {"n": 20}, seed=0)
    whole = torch.cat([x for x, _ in whole_data.train_batches()])
    assert sorted(_rows(val_x, whole) + _rows(train_x, whole)) == list(range(20))


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "words"),
    [
        ("mnist10k", [], {"val": 0}, "positive number"),
        ("mnist10k", [], {"val": -3}, "positive number"),
        ("mnist10k", [], {"val": True}, "positive number"),
        ("mnist10k", [], {"val": 0.1}, "positive number"),
        ("mnist10k", [], {"val": "held"}, "positive number"),
        ("mnist10k", [], {"limit": 100, "val": 100}, "leaves no training data"),
        ("mnist10k", [], {"val": 8000}, "leaves no training data"),
        ("cifar10", [], {"root": "/nonexistent", "val": 0}, "positive number"),
        ("imagefolder", ["{tmp}/train"], {"eval": "{tmp}/test", "val": 0}, "positive number"),
        ("imagefolder", ["{tmp}/train"], {"eval": "{tmp}/test", "val": 4}, "no training data"),
        ("imagefolder", ["{tmp}/train"], {"val": "{tmp}/test"}, "evaluation folder is not"),
        ("imagefolder", ["{tmp}/train"], {"eval": "{tmp}/test", "val": "{tmp}/no"}, "validation"),
        ("imagefolder", ["{tmp}/train"], {"eval": "{tmp}/test", "val": "{tmp}/test"}, "is the"),
        ("kdr_test_factory:tiny_data", [], {"n": 20, "val": 20}, "leaves no training data"),
        ("kdr_test_factory:tiny_data", [], {"val": "x"}, "positive number"),
    ],
)
def test_bad_validation_splits_are_kdr504(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    args: list[str],
    kwargs: dict[str, Any],
    words: str,
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    _image_folder(tmp_path / "train", {"a": 2, "b": 2}, 1)
    _image_folder(tmp_path / "test", {"a": 1, "b": 1}, 50)

    def fill(v: Any) -> Any:
        return v.format(tmp=tmp_path) if isinstance(v, str) else v

    with pytest.raises(KdrError) as exc:
        build_data(name, [fill(a) for a in args], {k: fill(v) for k, v in kwargs.items()})
    diagnostic = exc.value.diagnostics[0]
    assert diagnostic.code == "KDR504"
    assert words in diagnostic.message
    assert diagnostic.notes and diagnostic.notes[0].kind == "help"


def test_data_without_a_validation_split_says_so() -> None:
    data = build_data("mnist10k", [], {"limit": 32}, seed=0)
    with pytest.raises(KdrError) as exc:
        data.val_batches()
    assert "val=" in exc.value.diagnostics[0].notes[0].message


def test_val_on_a_factory_that_returns_a_bundle_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kdr_val_bundle.py").write_text(
        "from runtime.data import build_data\n\n"
        "def bundle():\n"
        '    return build_data("mnist10k", [], {"limit": 32}, seed=0)\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert build_data("kdr_val_bundle:bundle", [], {}).train_size == 32
    with pytest.raises(KdrError) as exc:
        build_data("kdr_val_bundle:bundle", [], {"val": 8})
    diagnostic = exc.value.diagnostics[0]
    assert diagnostic.code == "KDR504" and "cannot carve" in diagnostic.message
    assert "val_factory" in diagnostic.notes[0].message
