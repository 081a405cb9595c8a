"""Quantization backends behind one interface (:class:`QuantBackend`), by name.

Only ``fx`` (:class:`TorchAOFXBackend`) is registered; see :mod:`runtime.passes.quant` for why
torchao's PT2E flow is not.
"""

from __future__ import annotations

from torch import nn

from recipe_lang.diagnostics import KdrError, Note, error
from runtime.passes.quant_backends.config import (
    GRANULARITIES,
    MODES,
    QuantBackend,
    QuantConfig,
    choose_engine,
    engine_error,
    quiet_quantization,
    supported_engines,
)
from runtime.passes.quant_backends.fx import TorchAOFXBackend

BACKENDS: dict[str, QuantBackend] = {"fx": TorchAOFXBackend()}


def get_backend(cfg: QuantConfig) -> QuantBackend:
    """The backend ``cfg`` names, importable on this machine."""
    backend = BACKENDS.get(cfg.backend)
    if backend is None:
        raise KdrError(
            error(
                "KDR103",
                f"unknown quantization backend `{cfg.backend}`",
                None,
                Note(kind="help", message=f"expected one of {', '.join(BACKENDS)}"),
            )
        )
    if not backend.available():
        raise engine_error(f"quantization backend `{cfg.backend}` cannot be imported", [])
    return backend


def int8_modules(model: nn.Module) -> dict[str, int]:
    """Count of real int8 modules by class name (``ConvReLU2d``, ``Linear``, ``DynamicLinear``):
    how tests and reports tell a converted model from a fake-quant one."""
    counts: dict[str, int] = {}
    for m in model.modules():
        where = type(m).__module__
        if not where.startswith(("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized")):
            continue
        name = type(m).__name__
        if name.endswith("PackedParams"):  # weight holders inside the int8 layers
            continue
        name = f"Dynamic{name}" if "dynamic" in where else name
        counts[name] = counts.get(name, 0) + 1
    return counts


__all__ = [
    "BACKENDS",
    "GRANULARITIES",
    "MODES",
    "QuantBackend",
    "QuantConfig",
    "TorchAOFXBackend",
    "choose_engine",
    "get_backend",
    "int8_modules",
    "quiet_quantization",
    "supported_engines",
]
