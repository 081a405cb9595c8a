""":func:`build_data`: a recipe's ``data = CALL`` -> a :class:`DataBundle`, through the
registry (named sources) or the factory loader (``"pkg.mod:fn"``)."""

from __future__ import annotations

from typing import Any

import runtime.data.sources  # noqa: F401  (registers the named sources)
from runtime.data.bundle import DataBundle
from runtime.data.registry import data_error, lookup, signature_help
from runtime.data.sources.factory import build_factory, is_factory
from runtime.data.split import check_val


def build_data(name: str, args: list[Any], kwargs: dict[str, Any], *, seed: int = 0) -> DataBundle:
    """Build the dataset a recipe's ``data = name(*args, **kwargs)`` declares."""
    kwargs = dict(kwargs)
    if is_factory(name):
        return build_factory(name, list(args), kwargs, seed=seed)
    source = lookup(name)
    if source.seeded:
        kwargs["seed"] = seed
    _check_values(name, kwargs)
    try:
        bundle = source.build(*args, **kwargs)
    except TypeError as exc:
        raise data_error(
            f"`{name}` rejects its arguments: {exc}", signature_help(source.build, name)
        ) from exc
    bundle.seed = seed
    return bundle


def _check_values(name: str, kwargs: dict[str, Any]) -> None:
    for key in ("batch_size", "image_size", "limit", "eval_limit"):
        value = kwargs.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise data_error(
                f"`{name}`: `{key}` must be a positive integer, got {value!r}",
                f"e.g. `{name}({key}=64)`",
            )
    check_val(name, kwargs.get("val"), folder=name == "imagefolder")
    workers = kwargs.get("workers")
    if workers is not None and (not isinstance(workers, int) or workers < 0):
        raise data_error(f"`{name}`: `workers` must be a non-negative integer", "e.g. `workers=2`")
