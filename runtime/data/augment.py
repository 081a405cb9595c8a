"""Normalisation statistics and augmentation: a batched random crop/flip on tensors (in-memory
sources) and the equivalent torchvision transform pipelines (DataLoader sources)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


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


def transforms(image_size: int, augment: bool, flip: bool, mean: Any, std: Any) -> tuple[Any, Any]:
    """``(train, eval)`` torchvision transforms: resize, (crop with padding 4, flip,) normalise."""
    from torchvision import transforms as T

    base = [T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(mean, std)]
    aug: list[Any] = [T.RandomCrop(image_size, padding=4)] if augment else []
    if augment and flip:
        aug.append(T.RandomHorizontalFlip())
    return T.Compose(base[:1] + aug + base[1:]), T.Compose(base)
