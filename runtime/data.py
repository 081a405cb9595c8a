"""Datasets for kdr recipes: the built-in ``mnist10k``, torchvision sets, folders, factories.

:func:`build_data` turns a recipe's ``data = CALL`` into a :class:`DataBundle`. Options shared
by every dataset: ``batch_size`` (128), ``image_size``, ``augment`` (false: random crop with
padding 4, plus a horizontal flip for natural images but never for digits), ``workers`` (0),
``limit`` (use only the first N training images, for quick runs) and ``eval_limit``.

``mnist10k`` ships with kdr (``runtime/assets/mnist10k.npz``, 10,000 MNIST digits). Its split
is fixed: the **first 8,000 images are the training split, the last 2,000 the evaluation
split**. It lives in memory as normalised float tensors and is batched by slicing with a
seeded :class:`torch.Generator` permutation, with no DataLoader overhead.

Other sets (``cifar10``, ``cifar100``, ``mnist``, ``imagefolder``, ``"pkg.mod:fn"``) use
torchvision datasets and a DataLoader. torchvision sets never download unless the recipe says
``download=true``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from recipe_lang.diagnostics import KdrError, Note, error

ASSETS = Path(__file__).parent / "assets"
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
COMMON_OPTIONS = ("batch_size", "image_size", "augment", "workers", "limit", "eval_limit")
Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class DataBundle:
    """A dataset ready for training: batch iterators and the facts models are built from."""

    name: str
    in_channels: int
    num_classes: int
    image_size: int
    train_size: int
    eval_size: int
    batch_size: int
    augment: bool = False
    #: Seeds the default shuffling generator of :meth:`train_batches`.
    seed: int = 0
    #: ``train_factory(generator)`` yields shuffled training batches for one epoch.
    train_factory: Callable[[torch.Generator], Iterable[Batch]] = field(repr=False, default=None)  # type: ignore[assignment]
    eval_factory: Callable[[], Iterable[Batch]] = field(repr=False, default=None)  # type: ignore[assignment]
    #: In-memory training tensors (``mnist10k``): lets the engine cache teacher logits.
    train_tensors: Batch | None = field(repr=False, default=None)

    def train_batches(self, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """One epoch of shuffled (and, if asked, augmented) training batches."""
        if generator is None:
            generator = torch.Generator().manual_seed(self.seed)
        return iter(self.train_factory(generator))

    def eval_batches(self) -> Iterator[Batch]:
        """The evaluation split, in order, never augmented."""
        return iter(self.eval_factory())

    @property
    def steps_per_epoch(self) -> int:
        full, rest = divmod(self.train_size, self.batch_size)
        return full + (1 if rest > 1 else 0)

    def example_batch(self, n: int = 8) -> torch.Tensor:
        """``n`` evaluation images (N, C, H, W), for tracing and shape checks."""
        images: list[torch.Tensor] = []
        for x, _ in self.eval_batches():
            images.append(x)
            if sum(len(t) for t in images) >= n:
                break
        return torch.cat(images)[:n]


def _bad(message: str, help_text: str) -> KdrError:
    return KdrError(error("KDR504", message, None, Note(kind="help", message=help_text)))


def index_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Shuffled index batches over ``n`` samples; a trailing batch of one sample is dropped
    (BatchNorm cannot train on it)."""
    perm = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        idx = perm[start : start + batch_size]
        if len(idx) > 1 or n == 1:
            yield idx


def random_crop_flip(
    x: torch.Tensor, generator: torch.Generator, padding: int = 4, flip: bool = False
) -> torch.Tensor:
    """Per-sample random crop after zero padding (and horizontal flip), on a whole batch."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    rows = (oy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w))[:, None, None, :]
    out = padded[
        torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols
    ]
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        out = torch.where(mask[:, None, None, None], out.flip(3), out)
    return out


def _mnist10k(
    *,
    seed: int,
    batch_size: int = 128,
    image_size: int = 28,
    augment: bool = False,
    workers: int = 0,
    limit: int | None = None,
    eval_limit: int | None = None,
) -> DataBundle:
    with np.load(ASSETS / "mnist10k.npz") as npz:
        images = torch.from_numpy(npz["images"].astype(np.float32) / 255.0)
        labels = torch.from_numpy(npz["labels"].astype(np.int64))
    images = ((images - MNIST_MEAN) / MNIST_STD).unsqueeze(1)
    if image_size != 28:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear")
    x_train, y_train = images[:8000], labels[:8000]
    x_eval, y_eval = images[8000:], labels[8000:]
    if limit is not None:
        x_train, y_train = x_train[:limit].contiguous(), y_train[:limit].contiguous()
    if eval_limit is not None:
        x_eval, y_eval = x_eval[:eval_limit].contiguous(), y_eval[:eval_limit].contiguous()
    # Digits are not mirror-symmetric: never flip them. Padding is the background value.
    background = -MNIST_MEAN / MNIST_STD

    def train(generator: torch.Generator) -> Iterator[Batch]:
        for idx in index_batches(len(x_train), batch_size, generator):
            x = x_train[idx]
            if augment:
                x = random_crop_flip(x - background, generator) + background
            yield x, y_train[idx]

    def evaluate() -> Iterator[Batch]:
        for start in range(0, len(x_eval), 512):
            yield x_eval[start : start + 512], y_eval[start : start + 512]

    return DataBundle(
        "mnist10k",
        1,
        10,
        image_size,
        len(x_train),
        len(x_eval),
        batch_size,
        augment,
        seed,
        train,
        evaluate,
        (x_train, y_train),
    )


def _loaders(
    name: str,
    train_set: Any,
    eval_set: Any,
    *,
    in_channels: int,
    num_classes: int,
    image_size: int,
    batch_size: int,
    augment: bool,
    workers: int,
    limit: int | None,
    eval_limit: int | None,
) -> DataBundle:
    from torch.utils.data import DataLoader, Subset

    if limit is not None:
        train_set = Subset(train_set, range(min(limit, len(train_set))))
    if eval_limit is not None:
        eval_set = Subset(eval_set, range(min(eval_limit, len(eval_set))))

    def train(generator: torch.Generator) -> Iterable[Batch]:
        return DataLoader(
            train_set,
            batch_size=batch_size,
            shuffle=True,
            generator=generator,
            num_workers=workers,
            drop_last=len(train_set) % batch_size == 1,
        )

    def evaluate() -> Iterable[Batch]:
        return DataLoader(eval_set, batch_size=256, num_workers=workers)

    return DataBundle(
        name,
        in_channels,
        num_classes,
        image_size,
        len(train_set),
        len(eval_set),
        batch_size,
        augment,
        0,
        train,
        evaluate,
    )


def _transforms(image_size: int, augment: bool, flip: bool, mean: Any, std: Any) -> tuple[Any, Any]:
    from torchvision import transforms as T

    base = [T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(mean, std)]
    aug: list[Any] = [T.RandomCrop(image_size, padding=4)] if augment else []
    if augment and flip:
        aug.append(T.RandomHorizontalFlip())
    return T.Compose(base[:1] + aug + base[1:]), T.Compose(base)


def _root(root: str | None, name: str, download: bool) -> str:
    if root is None:
        raise _bad(f"`{name}` needs `root=`", f'write `{name}(root="~/data")`')
    path = Path(root).expanduser()
    if not path.exists() and not download:
        raise _bad(
            f"dataset root `{root}` for `{name}` does not exist",
            "point `root=` at the downloaded data, or pass `download=true`",
        )
    return str(path)


def _torchvision_set(
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
) -> DataBundle:
    from torchvision import datasets

    cls, channels, classes, size, mean, std, flip = {
        "cifar10": (datasets.CIFAR10, 3, 10, 32, CIFAR_MEAN, CIFAR_STD, True),
        "cifar100": (datasets.CIFAR100, 3, 100, 32, CIFAR_MEAN, CIFAR_STD, True),
        "mnist": (datasets.MNIST, 1, 10, 28, (MNIST_MEAN,), (MNIST_STD,), False),
    }[name]
    image_size = image_size or size
    path = _root(root, name, download)
    train_tf, eval_tf = _transforms(image_size, augment, flip, mean, std)
    try:
        train_set = cls(path, train=True, transform=train_tf, download=download)
        eval_set = cls(path, train=False, transform=eval_tf, download=download)
    except (RuntimeError, OSError) as exc:
        raise _bad(f"cannot load `{name}` from `{root}`: {exc}", "check `root=`") from exc
    return _loaders(
        name,
        train_set,
        eval_set,
        in_channels=channels,
        num_classes=classes,
        image_size=image_size,
        batch_size=batch_size,
        augment=augment,
        workers=workers,
        limit=limit,
        eval_limit=eval_limit,
    )


def _imagefolder(
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
    from torchvision import datasets
    from torchvision import transforms as T

    for folder in (train, val):
        if not Path(folder).expanduser().is_dir():
            raise _bad(f"image folder `{folder}` does not exist", "give the folder's path")
    mean, std = ((0.5,), (0.5,)) if grayscale else (IMAGENET_MEAN, IMAGENET_STD)
    train_tf, eval_tf = _transforms(image_size, augment, True, mean, std)
    if grayscale:
        train_tf = T.Compose([T.Grayscale(), train_tf])
        eval_tf = T.Compose([T.Grayscale(), eval_tf])
    train_set = datasets.ImageFolder(
        str(Path(train).expanduser()), transform=train_tf, loader=_load_image
    )
    eval_set = datasets.ImageFolder(
        str(Path(val).expanduser()), transform=eval_tf, loader=_load_image
    )
    bundle = _loaders(
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
        raise _bad(message, "remove or replace the file (or re-export it as PNG/JPEG)") from exc


def _factory(spec: str, args: list[Any], kwargs: dict[str, Any]) -> DataBundle:
    """``"pkg.mod:fn"(...)``: ``fn`` returns ``(train_set, eval_set)`` or a DataBundle.

    Common options are taken out of ``kwargs`` first; ``num_classes`` and ``in_channels`` are
    read from the sets' attributes of those names, else from the first sample and ``classes``.
    """
    opts = {k: kwargs.pop(k) for k in list(kwargs) if k in COMMON_OPTIONS}
    module_name, _, fn_name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), fn_name)
    except (ImportError, AttributeError) as exc:
        raise _bad(
            f"cannot import data factory `{spec}`: {exc}", "check the `pkg.mod:fn` path"
        ) from exc
    try:
        result = fn(*args, **kwargs)
    except TypeError as exc:
        raise _bad(f"data factory `{spec}` rejects its arguments: {exc}", _signature(fn)) from exc
    if isinstance(result, DataBundle):
        return result
    train_set, eval_set = result
    x0, _ = train_set[0]
    classes = getattr(train_set, "num_classes", None) or len(getattr(train_set, "classes", []))
    if not classes:
        raise _bad(
            f"data factory `{spec}`: cannot tell the number of classes",
            "give the training set a `num_classes` or `classes` attribute",
        )
    return _loaders(
        spec,
        train_set,
        eval_set,
        in_channels=int(x0.shape[0]),
        num_classes=int(classes),
        image_size=int(x0.shape[-1]),
        batch_size=opts.get("batch_size", 128),
        augment=False,
        workers=opts.get("workers", 0),
        limit=opts.get("limit"),
        eval_limit=opts.get("eval_limit"),
    )


def _signature(fn: Callable[..., Any]) -> str:
    try:
        return f"it accepts {fn.__name__}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return "check its arguments"


BUILDERS: dict[str, Callable[..., DataBundle]] = {
    "mnist10k": _mnist10k,
    "cifar10": lambda *a, **k: _torchvision_set("cifar10", *a, **k),
    "cifar100": lambda *a, **k: _torchvision_set("cifar100", *a, **k),
    "mnist": lambda *a, **k: _torchvision_set("mnist", *a, **k),
    "imagefolder": _imagefolder,
}


def data_names() -> list[str]:
    return sorted(BUILDERS)


def build_data(name: str, args: list[Any], kwargs: dict[str, Any], *, seed: int = 0) -> DataBundle:
    """Build the dataset a recipe's ``data = name(*args, **kwargs)`` declares."""
    kwargs = dict(kwargs)
    if ":" in name:
        return _factory(name, list(args), kwargs)
    builder = BUILDERS.get(name)
    if builder is None:
        import difflib

        close = difflib.get_close_matches(name, data_names(), n=1)
        hint = f"did you mean `{close[0]}`?" if close else f"known: {', '.join(data_names())}"
        raise _bad(f"unknown dataset `{name}`", hint)
    if name == "mnist10k":
        kwargs["seed"] = seed
    _check_values(name, kwargs)
    try:
        bundle = builder(*args, **kwargs)
        bundle.seed = seed
        return bundle
    except TypeError as exc:
        target = _mnist10k if name == "mnist10k" else builder
        raise _bad(f"`{name}` rejects its arguments: {exc}", _signature(target)) from exc


def _check_values(name: str, kwargs: dict[str, Any]) -> None:
    for key in ("batch_size", "image_size", "limit", "eval_limit"):
        value = kwargs.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise _bad(
                f"`{name}`: `{key}` must be a positive integer, got {value!r}",
                f"e.g. `{name}({key}=64)`",
            )
    workers = kwargs.get("workers")
    if workers is not None and (not isinstance(workers, int) or workers < 0):
        raise _bad(f"`{name}`: `workers` must be a non-negative integer", "e.g. `workers=2`")
