"""``data = "pkg.mod:fn"(...)``: a user's function that returns ``(train_set, eval_set)`` or a
:class:`DataBundle`. Not registered by name: any ``module:function`` spelling is a factory.

``val=N`` carves a validation split out of the returned training set (seeded by the data seed,
:mod:`runtime.data.split`); its examples come through the training set's own transform, so a
factory whose training set augments should build its bundle itself (a :class:`DataBundle`
with ``val_factory`` and ``val_size``), and ``val=`` on a factory that returns a bundle is
refused."""

from __future__ import annotations

import importlib
from typing import Any

from runtime.data.bundle import DataBundle, loader_bundle
from runtime.data.registry import COMMON_OPTIONS, data_error, signature_help
from runtime.data.split import check_val


def is_factory(name: str) -> bool:
    return ":" in name


def build_factory(
    spec: str, args: list[Any], kwargs: dict[str, Any], *, seed: int = 0
) -> DataBundle:
    """Call the factory ``spec`` (``kwargs`` is consumed).

    Common options are taken out of ``kwargs`` first; ``num_classes`` and ``in_channels`` are
    read from the sets' attributes of those names, else from the first sample and ``classes``.
    """
    opts = {k: kwargs.pop(k) for k in list(kwargs) if k in COMMON_OPTIONS}
    check_val(spec, opts.get("val"))
    module_name, _, fn_name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), fn_name)
    except (ImportError, AttributeError) as exc:
        raise data_error(
            f"cannot import data factory `{spec}`: {exc}", "check the `pkg.mod:fn` path"
        ) from exc
    try:
        result = fn(*args, **kwargs)
    except TypeError as exc:
        raise data_error(
            f"data factory `{spec}` rejects its arguments: {exc}", signature_help(fn)
        ) from exc
    if isinstance(result, DataBundle):
        if opts.get("val") is not None:
            raise data_error(
                f"data factory `{spec}` returns a DataBundle: kdr cannot carve `val=` out of it",
                "return `(train_set, eval_set)` and kdr carves the split, or give the bundle "
                "a `val_factory` and `val_size` yourself and drop `val=`",
            )
        return result
    train_set, eval_set = result
    x0, _ = train_set[0]
    classes = getattr(train_set, "num_classes", None) or len(getattr(train_set, "classes", []))
    if not classes:
        raise data_error(
            f"data factory `{spec}`: cannot tell the number of classes",
            "give the training set a `num_classes` or `classes` attribute",
        )
    return loader_bundle(
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
        val=opts.get("val"),
        seed=seed,
    )
