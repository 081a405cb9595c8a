"""``cifar10``, ``cifar100``, ``mnist``: torchvision datasets under ``root=``, batched by a
DataLoader. They never download unless the recipe says ``download=true``.

``val=N`` carves a validation split of N images out of the training set (after ``limit``),
drawn with the data seed and read with the evaluation transform (never augmented); see
:mod:`runtime.data.split`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from runtime.data.augment import CIFAR_MEAN, CIFAR_STD, MNIST_MEAN, MNIST_STD, transforms
from runtime.data.bundle import DataBundle, eval_view, loader_bundle
from runtime.data.registry import data_error, register_source


@dataclass(frozen=True)
class TorchvisionSet:
    """How to load one torchvision set: its class (an attribute of ``torchvision.datasets``),
    shape, class count, normalisation, and whether a horizontal flip is a fair augmentation."""

    dataset: str
    channels: int
    classes: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool


SETS = {
    "cifar10": TorchvisionSet("CIFAR10", 3, 10, 32, CIFAR_MEAN, CIFAR_STD, True),
    "cifar100": TorchvisionSet("CIFAR100", 3, 100, 32, CIFAR_MEAN, CIFAR_STD, True),
    "mnist": TorchvisionSet("MNIST", 1, 10, 28, (MNIST_MEAN,), (MNIST_STD,), False),
}


def _root(root: str | None, name: str, download: bool) -> str:
    if root is None:
        raise data_error(f"`{name}` needs `root=`", f'write `{name}(root="~/data")`')
    path = Path(root).expanduser()
    if not path.exists() and not download:
        raise data_error(
            f"dataset root `{root}` for `{name}` does not exist",
            "point `root=` at the downloaded data, or pass `download=true`",
        )
    return str(path)


def torchvision_set(
    name: str,
    *,
    root: str | None = None,
    download: bool = False,
    batch_size: int = 128,
    image_size: int | None = None,
    augment: bool = False,
    workers: int = 0,
    limit: int | None = None,
    eval_limit: int | None = None,
    val: int | None = None,
    seed: int = 0,
) -> DataBundle:
    """The torchvision set ``name`` (a key of :data:`SETS`)."""
    from torchvision import datasets

    spec = SETS[name]
    cls = getattr(datasets, spec.dataset)
    image_size = image_size or spec.size
    path = _root(root, name, download)
    train_tf, eval_tf = transforms(image_size, augment, spec.flip, spec.mean, spec.std)
    try:
        train_set = cls(path, train=True, transform=train_tf, download=download)
        eval_set = cls(path, train=False, transform=eval_tf, download=download)
    except (RuntimeError, OSError) as exc:
        raise data_error(f"cannot load `{name}` from `{root}`: {exc}", "check `root=`") from exc
    return loader_bundle(
        name,
        train_set,
        eval_set,
        in_channels=spec.channels,
        num_classes=spec.classes,
        image_size=image_size,
        batch_size=batch_size,
        augment=augment,
        workers=workers,
        limit=limit,
        eval_limit=eval_limit,
        val=val,
        val_view=eval_view(train_set, eval_tf) if val is not None else None,
        seed=seed,
    )


for _name in SETS:
    register_source(_name, seeded=True)(partial(torchvision_set, _name))
