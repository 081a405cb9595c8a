"""Names the compiler knows without importing torch: model zoo, built-ins, data, settings.

``ZOO`` is torchvision's list of classification constructors (a runtime test checks it against
``torchvision.models.list_models``), so that ``kdr check`` can say "did you mean" without
importing torchvision.
"""

from __future__ import annotations

from compiler import vocab

ZOO: tuple[str, ...] = (
    "alexnet",
    "convnext_base",
    "convnext_large",
    "convnext_small",
    "convnext_tiny",
    "densenet121",
    "densenet161",
    "densenet169",
    "densenet201",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "efficientnet_v2_l",
    "efficientnet_v2_m",
    "efficientnet_v2_s",
    "googlenet",
    "inception_v3",
    "maxvit_t",
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "regnet_x_16gf",
    "regnet_x_1_6gf",
    "regnet_x_32gf",
    "regnet_x_3_2gf",
    "regnet_x_400mf",
    "regnet_x_800mf",
    "regnet_x_8gf",
    "regnet_y_128gf",
    "regnet_y_16gf",
    "regnet_y_1_6gf",
    "regnet_y_32gf",
    "regnet_y_3_2gf",
    "regnet_y_400mf",
    "regnet_y_800mf",
    "regnet_y_8gf",
    "resnet101",
    "resnet152",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "resnext50_32x4d",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
    "squeezenet1_0",
    "squeezenet1_1",
    "swin_b",
    "swin_s",
    "swin_t",
    "swin_v2_b",
    "swin_v2_s",
    "swin_v2_t",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "vit_b_16",
    "vit_b_32",
    "vit_h_14",
    "vit_l_16",
    "vit_l_32",
    "wide_resnet101_2",
    "wide_resnet50_2",
)

#: kdr's own model families.
BUILTIN_MODELS: tuple[str, ...] = ("convnet",)

#: Optional libraries whose models a recipe names by prefix (``timm.resnet18``,
#: ``hf.ViTForImageClassification``). The compiler cannot list their models without importing
#: them: any name after the prefix is accepted here and checked by the runtime's family.
LIBRARY_PREFIXES: tuple[str, ...] = ("timm.", "hf.")

#: Built-in datasets.
DATASETS: tuple[str, ...] = ("mnist10k", "imagefolder", "cifar10", "cifar100", "mnist")

OPTIMIZERS: tuple[str, ...] = vocab.OPTIMIZERS
SCHEDULES: tuple[str, ...] = vocab.SCHEDULES
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")


def is_library_name(name: str) -> bool:
    """``timm.resnet18``, ``hf.ViTForImageClassification``: a prefix and a name after it."""
    return any(name.startswith(p) and len(name) > len(p) for p in LIBRARY_PREFIXES)


def library_weights(constructor: str | None, kwargs: dict[str, object]) -> str | None:
    """Trained weights a library call asks for: ``"pretrained"`` for ``timm.x(pretrained=true)``
    (trained on timm's own classes; the classifier is re-initialised for the data's),
    ``"saved"`` for ``hf.from_pretrained("dir")`` (a saved model), else None."""
    if constructor == "hf.from_pretrained":
        return "saved"
    if (constructor or "").startswith("timm.") and kwargs.get("pretrained") is True:
        return "pretrained"
    return None


def is_model_constructor(name: str) -> bool:
    """A constructor the compiler accepts: torchvision's zoo, kdr's own, or a library's."""
    return is_zoo_name(name) or name in BUILTIN_MODELS or is_library_name(name)


def is_zoo_name(name: str) -> bool:
    """``resnet18``, ``torchvision.resnet18`` and ``torchvision.models.resnet18`` all count."""
    return name.rsplit(".", 1)[-1] in ZOO and ("." not in name or name.startswith("torchvision."))
