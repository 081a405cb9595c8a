"""``imagefolder(train, val=...)``: one sub-folder per class, read with PIL through a
DataLoader. An unreadable image becomes a KDR504 naming the file, even from a worker."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from runtime.data.augment import IMAGENET_MEAN, IMAGENET_STD, transforms
from runtime.data.bundle import Batch, DataBundle, loader_bundle
from runtime.data.registry import data_error, register_source


@register_source("imagefolder")
def imagefolder(
    train: str = "train",
    *,
    val: str = "val",
    batch_size: int = 128,
    image_size: int = 32,
    augment: bool = False,
    workers: int = 0,
    limit: int | None = None,
    eval_limit: int | None = None,
    grayscale: bool = False,
) -> DataBundle:
    """Class folders under ``train`` and ``val`` (normalised with ImageNet statistics)."""
    from torchvision import datasets
    from torchvision import transforms as T

    for folder in (train, val):
        if not Path(folder).expanduser().is_dir():
            raise data_error(f"image folder `{folder}` does not exist", "give the folder's path")
    mean, std = ((0.5,), (0.5,)) if grayscale else (IMAGENET_MEAN, IMAGENET_STD)
    train_tf, eval_tf = transforms(image_size, augment, True, mean, std)
    if grayscale:
        train_tf = T.Compose([T.Grayscale(), train_tf])
        eval_tf = T.Compose([T.Grayscale(), eval_tf])
    train_set = datasets.ImageFolder(
        str(Path(train).expanduser()), transform=train_tf, loader=_load_image
    )
    eval_set = datasets.ImageFolder(
        str(Path(val).expanduser()), transform=eval_tf, loader=_load_image
    )
    bundle = loader_bundle(
        "imagefolder",
        train_set,
        eval_set,
        in_channels=1 if grayscale else 3,
        num_classes=len(train_set.classes),
        image_size=image_size,
        batch_size=batch_size,
        augment=augment,
        workers=workers,
        limit=limit,
        eval_limit=eval_limit,
    )
    train_factory, eval_factory = bundle.train_factory, bundle.eval_factory
    bundle.train_factory = lambda generator: _guard_images(train_factory(generator))
    bundle.eval_factory = lambda: _guard_images(eval_factory())
    return bundle


class UnreadableImage(OSError):
    """An image file of an ``imagefolder`` that PIL cannot decode (raised in the loader, which
    may run in a DataLoader worker: a plain exception type survives the trip back)."""


def _load_image(path: str) -> Any:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError as exc:  # PIL.UnidentifiedImageError, truncated files, unreadable files
        reason = str(exc).replace(repr(path), "").strip() or type(exc).__name__
        raise UnreadableImage(f"cannot read image `{path}`: {reason}") from exc


def _guard_images(batches: Iterable[Batch]) -> Iterator[Batch]:
    """Turn an unreadable image met while batching into a KDR504 diagnostic naming the file."""
    try:
        yield from batches
    except UnreadableImage as exc:
        # From a worker the message is the worker's traceback; its last line is the original.
        lines = [line for line in str(exc).splitlines() if line.strip()]
        message = lines[-1].removeprefix(f"{__name__}.").removeprefix("UnreadableImage: ")
        raise data_error(
            message, "remove or replace the file (or re-export it as PNG/JPEG)"
        ) from exc
