"""Probe: prune 50% channels (l1, local) of timm models with random weights; params ratio,
whether the pruned forward works and keeps its output shape. Usage:
``PYTHONPATH=. python bench/_probe_ops.py [names...]``."""

from __future__ import annotations

import sys
import time
import traceback

import timm
import torch

from runtime.passes.channels import count_params, prune_model
from runtime.passes.scopes import Scope

MODELS = [
    "cspresnet50",
    "dpn68",
    "densenet121",
    "inception_v3",
    "repvgg_a0",
    "mobileone_s0",
    "ese_vovnet19b_dw",
    "mobilenetv4_conv_small",
    "fbnetc_100",
    "efficientnet_b0",
    "mobilenetv3_small_100",
    "regnety_002",
    "rexnet_100",
    "tinynet_e",
    "lcnet_050",
    "mnasnet_small",
    "ghostnet_100",
    "res2net50_26w_4s",
    "edgenext_xx_small",
    "starnet_s1",
    "resmlp_12_224",
    "convnext_atto",
    "convnextv2_atto",
    "resnest14d",
    "nfnet_l0",
    "resnet18",
]
SIZE = {"inception_v3": 96, "resmlp_12_224": 224, "edgenext_xx_small": 64}


def probe(name: str) -> str:
    torch.manual_seed(0)
    m = timm.create_model(name, pretrained=False, num_classes=10).eval()
    s = SIZE.get(name, 64)
    x = torch.randn(1, 3, s, s)
    with torch.no_grad():
        y0 = m(x)
    before = count_params(m)
    t = time.time()
    try:
        _, info = prune_model(m, x, 0.5, "l1", "local", Scope())
    except Exception as exc:
        return f"{name:26s} prune failed: {type(exc).__name__}: {str(exc)[:150]}"
    ratio = count_params(m) / before
    try:
        with torch.no_grad():
            m.train()(torch.cat([x, x]))
            y = m.eval()(x)
        ok = "ok" if y.shape == y0.shape else f"shape {tuple(y.shape)}"
    except Exception as exc:
        ok = f"FORWARD FAILED {type(exc).__name__}: {str(exc)[:100]}"
    blocked = list(info["groups_unprunable"].items())[:2]
    return f"{name:26s} {ratio:.3f} {ok} {time.time() - t:.0f}s  {str(blocked)[:200]}"


if __name__ == "__main__":
    for n in sys.argv[1:] or MODELS:
        try:
            print(probe(n), flush=True)
        except Exception:
            print(n, "probe crashed", traceback.format_exc().splitlines()[-1], flush=True)
