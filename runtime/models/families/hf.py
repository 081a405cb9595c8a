"""``hf.<ModelClass>(...)`` and ``hf.from_pretrained("dir")``: Hugging Face transformers vision
models (``pip install 'kdr[hf]'``).

- ``hf.ViTForImageClassification(hidden_size=64, num_hidden_layers=2, ...)``: the keyword
  arguments are the fields of the class's config (``ViTConfig``); the model is built from
  that config with random weights. The recipe language has no dict literal, so the config is
  given field by field; an unknown field is a KDR504 with a "did you mean" (transformers would
  silently keep it as an attribute).
- ``hf.from_pretrained("path/to/dir")``: a model saved with ``save_pretrained``, loaded from the
  LOCAL directory only (``local_files_only=True``: kdr never downloads); keyword arguments
  override config fields.

Wiring from the data, unless the call gives it: ``num_labels`` (the classifier's outputs) and,
for vision configs that have them, ``num_channels`` and ``image_size``. A loaded model whose
classifier has another number of labels gets a freshly initialised one (and a note in the
report); one whose stem takes other channels is adapted like a pretrained torchvision stem.
The forward returns a ``ModelOutput``; kdr reads its ``logits``
(:func:`runtime.models.outputs.logits_of`).
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch import nn

from runtime.models.heads import adapt_input_channels
from runtime.models.registry import (
    Family,
    ModelFn,
    Wiring,
    model_error,
    optional_library,
    register_family,
)

PREFIX = "hf."
FROM_PRETRAINED = "from_pretrained"


def config_fields(config_class: Any) -> set[str]:
    """The fields a config class knows: its constructor's parameters, its defaults' keys and
    ``num_labels`` (every config takes it)."""
    fields = {"num_labels"}
    with contextlib.suppress(TypeError, ValueError):
        fields |= set(inspect.signature(config_class).parameters) - {"kwargs"}
    with contextlib.suppress(Exception):  # a config without defaults: its signature is enough
        fields |= set(config_class().to_dict())
    return fields


def _check_fields(config_class: Any, given: dict[str, Any], what: str) -> None:
    fields = config_fields(config_class)
    for key in given:
        if key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise TypeError(f"{what} has no field `{key}`{hint}")


class HFBuilder:
    """``ModelClass(ModelClass.config_class(**config))``: random weights from a config."""

    def __init__(self, model_class: Any) -> None:
        self.model_class = model_class
        self.__name__ = PREFIX + model_class.__name__
        config = model_class.config_class
        self.fields = config_fields(config)
        self.kdr_help = (
            f"`{self.__name__}` takes {config.__name__}'s fields as keyword arguments, e.g. "
            "hidden_size=64, num_hidden_layers=2"
        )

    def __call__(self, *args: Any, **config: Any) -> nn.Module:
        if args:
            raise TypeError("a Hugging Face model takes its config's fields as keyword arguments")
        config_class = self.model_class.config_class
        _check_fields(config_class, config, config_class.__name__)
        model: nn.Module = self.model_class(config_class(**config))
        return model


class HFFromPretrained:
    """``hf.from_pretrained("dir")``: a saved model from a local directory, fitted to the data."""

    __name__ = PREFIX + FROM_PRETRAINED
    kdr_help = (
        'hf.from_pretrained("dir", field=value, ...): a directory written by save_pretrained; '
        "keyword arguments override config fields"
    )

    def __call__(self, path: Any = None, *args: Any, **overrides: Any) -> nn.Module:
        if not isinstance(path, str) or args:
            raise TypeError('give one directory: hf.from_pretrained("path/to/dir")')
        transformers = optional_library("transformers", "hf")
        folder = Path(path).expanduser()
        if not (folder / "config.json").is_file():
            raise model_error(
                f"`{path}` is not a local Hugging Face model directory (no config.json)",
                "give a directory written by `model.save_pretrained(dir)`; kdr never downloads",
            )
        config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
        channels = overrides.pop("num_channels", None)
        _check_fields(type(config), overrides, type(config).__name__)
        old_labels = config.num_labels
        for key, value in overrides.items():
            setattr(config, key, value)
        names = list(getattr(config, "architectures", None) or [])
        model_class = getattr(transformers, names[0], None) if names else None
        if model_class is None:
            model_class = transformers.AutoModelForImageClassification
        relabel = config.num_labels != old_labels
        with _quiet(transformers):
            model: nn.Module = model_class.from_pretrained(
                str(folder), config=config, local_files_only=True, ignore_mismatched_sizes=relabel
            )
        if relabel:
            note = (
                f"classifier re-initialised for {config.num_labels} labels "
                f"(saved with {old_labels})"
            )
            object.__setattr__(model, "kdr_notes", [note])
        if channels is not None:
            _fit_channels(model, int(channels))
        return model


@contextlib.contextmanager
def _quiet(transformers: Any) -> Iterator[None]:
    """transformers' load report and progress bars off while loading (kdr reports the
    re-initialised classifier itself); its settings restored."""
    logging = transformers.utils.logging
    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def _fit_channels(model: nn.Module, channels: int) -> None:
    """A loaded model's stem fitted to ``channels`` inputs (pretrained filters averaged, as for
    torchvision), and the config and embedding modules told: HF checks the channels itself."""
    config: Any = getattr(model, "config", None)
    old = getattr(config, "num_channels", None)
    if old is None or old == channels:
        return
    adapt_input_channels(model, channels, pretrained=True)
    config.num_channels = channels
    for module in model.modules():
        if getattr(module, "num_channels", None) == old and not isinstance(module, nn.GroupNorm):
            setattr(module, "num_channels", channels)  # noqa: B010  (a plain int attribute)


def _resolve(constructor: str) -> ModelFn | None:
    if not constructor.startswith(PREFIX):
        return None
    name = constructor[len(PREFIX) :]
    if name == FROM_PRETRAINED:
        return HFFromPretrained()
    transformers = optional_library("transformers", "hf")
    try:
        model_class = getattr(transformers, name, None)
    except Exception:  # a lazily imported class whose backend is missing
        model_class = None
    if model_class is None or getattr(model_class, "config_class", None) is None:
        classes = [n for n in dir(transformers) if "For" in n and not n.startswith("TF")]
        close = difflib.get_close_matches(name, classes, n=3)
        hint = (
            "did you mean " + ", ".join(f"`{PREFIX}{c}`" for c in close) + "?"
            if close
            else "name a transformers model class, e.g. `hf.ViTForImageClassification`, or "
            'load a saved one with `hf.from_pretrained("dir")`'
        )
        raise model_error(f"transformers has no model class `{name}` ({constructor})", hint)
    return HFBuilder(model_class)


def _wire(fn: ModelFn, kwargs: dict[str, Any], wiring: Wiring) -> None:
    kwargs.setdefault("num_labels", wiring.num_classes)
    if isinstance(fn, HFFromPretrained):
        kwargs.setdefault("num_channels", wiring.in_channels)
        return
    fields = fn.fields if isinstance(fn, HFBuilder) else set()
    if "num_channels" in fields:
        kwargs.setdefault("num_channels", wiring.in_channels)
    if "image_size" in fields and wiring.image_size is not None:
        kwargs.setdefault("image_size", wiring.image_size)


register_family(Family("hf", _resolve, _wire))
