"""timm models that read channel counts in Python: each pruned at 50% (l1, local) to
at most 0.35 of its params, then run forward, replayed and trained (small configs, 64 px)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

MODELS: list[Any] = [
    ("pvt_v2_b0", {"depths": (1, 1, 1, 1)}),  # MLP dwconv view(B, C, H, W), kv head_dim
    ("cait_xxs24_224", {"img_size": 64, "depth": 2}),  # q by the residual's C // heads
    ("pit_ti_224", {"img_size": 64}),  # reshape(B, C, H, W), cls_tokens.shape[1]
    ("resnest14d", {}),  # reshape(B, radix, RC // radix, H, W)
    pytest.param("skresnet18", {}, marks=pytest.mark.slow),  # C // paths, split, ~12 s
    ("swin_tiny_patch4_window7_224", {"img_size": 64, "depths": (1, 1, 1, 1)}),  # windows
    pytest.param("maxvit_pico_rw_256", {"img_size": 64}, marks=pytest.mark.slow),  # ~20 s
]


@pytest.mark.parametrize(("name", "kwargs"), MODELS)
def test_timm_model_reading_its_channel_count_prunes(
    name: str, kwargs: dict[str, Any], prunes_timm: Callable[..., dict[str, Any]]
) -> None:
    prunes_timm(name, 64, batch=1, **kwargs)
