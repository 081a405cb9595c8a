"""Model resolution: torchvision constructors, the built-in ``convnet`` family, factories.

:func:`build_model` turns a recipe's ``model NAME = CALL`` into an ``nn.Module``:

- a torchvision classification constructor (``resnet18``, ``mobilenet_v2(width_mult=0.5)``,
  also spelled ``torchvision.resnet18`` or ``torchvision.models.resnet18``); ``weights=`` is
  passed through (``weights="DEFAULT"``). ``num_classes`` comes from the data unless the call
  gives it or asks for pretrained weights (their head is kept; the compiler checks classes);
- ``convnet(width=16, depth=3)``: a small CNN for small images (see :class:`ConvNet`);
- ``timm.<name>(...)`` (any timm model) and ``hf.<ModelClass>(...)`` / ``hf.from_pretrained("dir")``
  (Hugging Face transformers), optional extras wired from the data (classes, channels, image
  size): see :mod:`~runtime.models.families.timm_zoo` and :mod:`~runtime.models.families.hf`;
- a factory ``"pkg.mod:fn"(...)``, imported with importlib; it receives ``num_classes`` and
  ``in_channels`` only if its signature names them.

A forward's output is read as logits by one rule, :func:`~runtime.models.outputs.logits_of`
(a tensor; a dict or ``ModelOutput``'s ``logits``; a tuple's first item).

The stem is fitted to the data's channels (:func:`adapt_input_channels`). Every failure
(unknown constructor, rejected arguments, factory import errors, weights that do not load) is
a ``KDR504`` diagnostic.

Layout: :mod:`~runtime.models.registry` (one registry of families, names from
``compiler.zoo``), :mod:`~runtime.models.families` (one module per family),
:mod:`~runtime.models.build`, :mod:`~runtime.models.heads`, :mod:`~runtime.models.weights`,
:mod:`~runtime.models.ensemble`.
"""

from runtime.models.build import build_model
from runtime.models.ensemble import Ensemble
from runtime.models.families.convnet import ConvNet, convnet
from runtime.models.families.torchvision_zoo import zoo_names
from runtime.models.heads import adapt_input_channels
from runtime.models.outputs import LogitsOnly, logits_of
from runtime.models.registry import FAMILIES, Family, model_names, register_builtin
from runtime.models.weights import load_weights

__all__ = [
    "FAMILIES",
    "ConvNet",
    "Ensemble",
    "Family",
    "LogitsOnly",
    "adapt_input_channels",
    "build_model",
    "convnet",
    "load_weights",
    "logits_of",
    "model_names",
    "register_builtin",
    "zoo_names",
]
