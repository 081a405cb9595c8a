"""The model families. Importing this package registers each one in
:mod:`runtime.models.registry`: ``convnet`` (kdr's own), ``torchvision`` (the classification
zoo), ``factory`` (``"pkg.mod:fn"``), ``timm`` (``timm.<name>``) and ``hf``
(``hf.<ModelClass>``, ``hf.from_pretrained``). timm and transformers are imported only when a
recipe names one of their models."""

from runtime.models.families import convnet, factory, hf, timm_zoo, torchvision_zoo

__all__ = ["convnet", "factory", "hf", "timm_zoo", "torchvision_zoo"]
