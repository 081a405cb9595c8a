"""The model families. Importing this package registers each one in
:mod:`runtime.models.registry`: ``convnet`` (kdr's own), ``torchvision`` (the classification
zoo) and ``factory`` (``"pkg.mod:fn"``)."""

from runtime.models.families import convnet, factory, torchvision_zoo

__all__ = ["convnet", "factory", "torchvision_zoo"]
