"""The data sources. Importing this package registers every named source (``mnist10k``,
``cifar10``, ``cifar100``, ``mnist``, ``imagefolder``) in :mod:`runtime.data.registry`;
``"pkg.mod:fn"`` factories live in :mod:`runtime.data.sources.factory`."""

from runtime.data.sources import imagefolder, mnist10k, torchvision_sets

__all__ = ["imagefolder", "mnist10k", "torchvision_sets"]
