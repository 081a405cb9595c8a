"""``imagefolder(train, eval=..., val=...)``: one sub-folder per class, read with PIL through
a DataLoader. An unreadable image becomes a KDR504 naming the file, even from a worker.

``train`` and ``eval`` (default ``"val"``) are the training and evaluation folders. ``val`` is
the validation split (what ``keep best`` chooses by): a count carves that many images out of
the training folder (after ``limit``, drawn with the data seed, see
:mod:`runtime.data.split`), a string names a folder of class folders of its own. Validation
images are read with the evaluation transform (never augmented).

Before issue 13 ``val=`` named the *evaluation* folder; a recipe that names a validation
folder must therefore name its evaluation folder too (``eval=``), so an old recipe is a
KDR504 that says so rather than silently evaluating elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from runtime.data.augment import IMAGENET_MEAN, IMAGENET_STD, transforms
from runtime.data.bundle import Batch, DataBundle, eval_view, loader_bundle
from runtime.data.registry import data_error, register_source
from runtime.data.split import check_val


@register_source("imagefolder", seeded=True)
def imagefolder(
    train: str = "train",
    *,
    eval: str | None = None,
    val: int | str | None = None,
    seed: int = 0,
    batch_size: int = 128,
    image_size: int = 32,
    augment: bool = False,
    workers: int = 0,
    limit: int | None = None,
    eval_limit: int | None = None,
    grayscale: bool = False,
) -> DataBundle:
    """Class folders under ``train``, ``eval`` and maybe ``val`` (normalised with ImageNet
    statistics)."""
    from torchvision import datasets
    from torchvision import transforms as T

    check_val("imagefolder", val, folder=True)
    if isinstance(val, str) and eval is None:
        raise data_error(
            f'`imagefolder(val="{val}")` names the validation split, and the evaluation '
            "folder is not given",
            f'name both: `imagefolder("{train}", eval="test", val="{val}")` (`val=` was the '
            "evaluation folder before kdr had a validation split; it is `eval=` now)",
        )
    eval = "val" if eval is None else eval
    folders = [("training", train), ("evaluation", eval)]
    if isinstance(val, str):
        folders.append(("validation", val))
        if Path(val).expanduser().resolve() == Path(eval).expanduser().resolve():
            raise data_error(
                f"`imagefolder`: the validation folder `{val}` is the evaluation folder",
                "keep best would choose on the images the report measures: give the "
                "validation images a folder of their own, or carve them with `val=N`",
            )
    for role, folder in folders:
        if not Path(folder).expanduser().is_dir():
            raise data_error(
                f"{role} image folder `{folder}` does not exist",
                "give the folder's path (relative to the working directory)"
                + ("; the evaluation folder is `eval=`" if role == "evaluation" else ""),
            )
    mean, std = ((0.5,), (0.5,)) if grayscale else (IMAGENET_MEAN, IMAGENET_STD)
    train_tf, eval_tf = transforms(image_size, augment, True, mean, std)
    if grayscale:
        train_tf = T.Compose([T.Grayscale(), train_tf])
        eval_tf = T.Compose([T.Grayscale(), eval_tf])
    train_set = datasets.ImageFolder(
        str(Path(train).expanduser()), transform=train_tf, loader=_load_image
    )
    eval_set = datasets.ImageFolder(
        str(Path(eval).expanduser()), transform=eval_tf, loader=_load_image
    )
    val_set = None
    if isinstance(val, str):
        val_set = datasets.ImageFolder(
            str(Path(val).expanduser()), transform=eval_tf, loader=_load_image
        )
        if val_set.classes != train_set.classes:
            raise data_error(
                f"validation folder `{val}` has classes {val_set.classes}, the training "
                f"folder {train_set.classes}",
                "give both folders the same class sub-folders",
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
        val=val if isinstance(val, int) else None,
        val_view=eval_view(train_set, eval_tf) if isinstance(val, int) else None,
        val_set=val_set,
        seed=seed,
    )
    train_factory, eval_factory = bundle.train_factory, bundle.eval_factory
    bundle.train_factory = lambda generator: _guard_images(train_factory(generator))
    bundle.eval_factory = lambda: _guard_images(eval_factory())
    val_factory = bundle.val_factory
    if val_factory is not None:
        bundle.val_factory = lambda: _guard_images(val_factory())
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
