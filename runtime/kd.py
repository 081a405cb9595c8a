"""Knowledge-distillation loss and the mixing augmentations KD pairs well with.

The KD loss is Hinton's::

    loss = alpha * T^2 * KL(softmax(t / T) || softmax(s / T))  +  (1 - alpha) * CE(s, y)

with the KL averaged over the batch (``batchmean``) and the cross-entropy optionally
label-smoothed. ``y`` may be plain class indices or :class:`MixedTargets` from :func:`mixup` /
:func:`cutmix`; then the CE term is ``lam * CE(s, y_a) + (1 - lam) * CE(s, y_b)``.

With distillation the teacher must see the *same* mixed batch as the student: the teacher's
soft labels on augmented inputs are the implicit ensemble KD relies on (see the engine).

>>> s = torch.tensor([[2.0, 0.0]]); t = torch.tensor([[2.0, 0.0]]); y = torch.tensor([0])
>>> bool(torch.isclose(kd_loss(s, t, y, 4.0, 1.0), torch.tensor(0.0), atol=1e-6))
True
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F


class MixedTargets(NamedTuple):
    """Targets of a mixed batch: each sample is ``lam`` of ``y_a`` and ``1 - lam`` of ``y_b``."""

    y_a: torch.Tensor
    y_b: torch.Tensor
    lam: float


Targets = torch.Tensor | MixedTargets


def cross_entropy(
    logits: torch.Tensor, targets: Targets, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy against plain or mixed targets."""
    if isinstance(targets, MixedTargets):
        y_a, y_b, lam = targets
        loss_a = F.cross_entropy(logits, y_a, label_smoothing=label_smoothing)
        loss_b = F.cross_entropy(logits, y_b, label_smoothing=label_smoothing)
        return lam * loss_a + (1.0 - lam) * loss_b
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)


def soft_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T^2 * KL(softmax(t / T) || softmax(s / T))``, averaged over the batch."""
    t = float(temperature)
    log_p_s = F.log_softmax(student_logits.float() / t, dim=1)
    log_p_t = F.log_softmax(teacher_logits.float() / t, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * (t * t)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: Targets,
    temperature: float,
    alpha: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Hinton's distillation loss (see the module docstring); ``alpha`` weighs the soft term."""
    if alpha >= 1.0:
        return soft_kl(student_logits, teacher_logits, temperature)
    ce = cross_entropy(student_logits, targets, label_smoothing)
    if alpha <= 0.0:
        return ce
    return alpha * soft_kl(student_logits, teacher_logits, temperature) + (1.0 - alpha) * ce


def sample_lambda(alpha: float) -> float:
    """A draw from Beta(alpha, alpha), from torch's global generator (seeded by the engine)."""
    a = torch.tensor(float(alpha))
    return float(torch.distributions.Beta(a, a).sample())


def mixup(
    x: torch.Tensor, y: torch.Tensor, alpha: float, lam: float | None = None
) -> tuple[torch.Tensor, MixedTargets]:
    """Mixup: ``lam * x + (1 - lam) * x[perm]`` with ``lam ~ Beta(alpha, alpha)``."""
    lam = sample_lambda(alpha) if lam is None else lam
    perm = torch.randperm(x.shape[0], device=x.device)
    mixed = x.mul(lam).add_(x[perm], alpha=1.0 - lam)
    return mixed, MixedTargets(y, y[perm], lam)


def cutmix(
    x: torch.Tensor, y: torch.Tensor, alpha: float, lam: float | None = None
) -> tuple[torch.Tensor, MixedTargets]:
    """CutMix: paste a random box of ``x[perm]`` whose area is about ``1 - lam`` of the image.

    ``lam`` is then corrected to the box actually pasted (clipped at the borders).
    """
    lam = sample_lambda(alpha) if lam is None else lam
    n, _, h, w = x.shape
    perm = torch.randperm(n, device=x.device)
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy = int(torch.randint(h, (1,)).item())
    cx = int(torch.randint(w, (1,)).item())
    y1, y2 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x1, x2 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    mixed = x.clone()
    mixed[:, :, y1:y2, x1:x2] = x[perm, :, y1:y2, x1:x2]
    lam = 1.0 - (y2 - y1) * (x2 - x1) / float(h * w)
    return mixed, MixedTargets(y, y[perm], lam)


def mix_batch(
    x: torch.Tensor, y: torch.Tensor, mixup_alpha: float | None, cutmix_alpha: float | None
) -> tuple[torch.Tensor, Targets]:
    """Apply mixup or cutmix as configured; with both, pick one per batch with equal odds."""
    if mixup_alpha and cutmix_alpha:
        if torch.rand(()).item() < 0.5:
            return mixup(x, y, mixup_alpha)
        return cutmix(x, y, cutmix_alpha)
    if mixup_alpha:
        return mixup(x, y, mixup_alpha)
    if cutmix_alpha:
        return cutmix(x, y, cutmix_alpha)
    return x, y
