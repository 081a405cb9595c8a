"""int8 quantization as graph passes, behind one small backend interface.

Plan ops and their parameters (:mod:`compiler.ops`):

- ``quant.prepare`` ``QuantParams(mode="static"|"dynamic", granularity="per_channel"|
  "per_tensor")``: fuse Conv/BN/ReLU and insert observers (static) or mark Linear/LSTM layers
  for dynamic int8. The engine is the machine's (``auto``), the backend ``fx``.
- ``quant.calibrate`` ``CalibrateParams(batches=N)``: run N batches of ``ctx.batches()``
  through the observed model in eval mode (a no-op for dynamic quantization).
- ``quant.prepare_qat`` ``QuantParams(granularity=...)``: insert fake-quant modules (whatever
  ``mode`` says); the result trains as an ordinary ``nn.Module``.
- ``quant.convert``: swap observed or fake-quant modules for real int8 kernels
  (``QuantizedConv2d``, ``QuantizedLinear``, dynamic ``Linear``...); it reads the settings of
  the prepare, not its own params.

The settings chosen at prepare time (:class:`QuantConfig`) travel to convert in the prepared
GraphModule's ``meta["kdr_quant"]``. Every op has a replay that needs no data (prepare again,
convert uncalibrated observers), so a fresh float model can be rebuilt into the same int8
structure and then ``load_state_dict`` the saved int8 weights and quantization parameters.

The backends live in :mod:`runtime.passes.quant_backends` (config, engine choice, KDR503).

Only the torch.ao FX backend (:class:`~runtime.passes.quant_backends.TorchAOFXBackend`) is
registered. A PT2E backend (torchao's ``prepare_pt2e``/``convert_pt2e`` with
``X86InductorQuantizer``) was tried and left out: torch 2.14 no longer ships
``torch.ao.quantization.quantize_pt2e`` (it moved to torchao); torchao 0.18 (the PyPI release,
installed ``--no-deps`` beside torch 2.14.1) imports, but its ``X86InductorQuantizer`` fails
to annotate an exported torchvision resnet18 ("Input partition has more than one output node"
on the conv+add+relu pattern). Even where it works, ``convert_pt2e`` yields a *reference*
graph (fp32 kernels between quantize/dequantize ops) that is only faster after
``torch.compile``/Inductor lowering, i.e. a C++ toolchain and minutes of compilation at run
time, while FX's ``convert_fx`` gives eager int8 kernels (2.8-2.9x at batch 32 on resnet18
here, ``bench/quant.py``).

>>> from runtime.passes.base import PASSES
>>> sorted(op for op in PASSES if op.startswith("quant."))
['quant.calibrate', 'quant.convert', 'quant.prepare', 'quant.prepare_qat']
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import torch
from torch import nn

from compiler.ops import CalibrateParams, QuantParams
from recipe_lang.diagnostics import KdrError, Note, error
from runtime.passes.base import PassContext, PassResult, register_pass
from runtime.passes.quant_backends import QuantConfig, choose_engine, get_backend, int8_modules

#: The engine check ``kdr check --models`` runs before any training (KDR503 when none).
select_engine = choose_engine


def _config_of(module: nn.Module) -> QuantConfig:
    meta = getattr(module, "meta", {}).get("kdr_quant", {})
    return QuantConfig.from_dict(meta)


def _example_from_record(record: dict[str, Any]) -> torch.Tensor:
    return torch.zeros(record.get("input_shape") or [1, 3, 32, 32])


def _prepare_result(
    module: nn.Module, params: QuantParams, ctx: PassContext, mode: str
) -> PassResult:
    cfg = QuantConfig(mode=mode, granularity=params.granularity)
    backend = get_backend(cfg)
    prepare = backend.prepare_qat if mode == "qat" else backend.prepare
    prepared = prepare(module, ctx.example_inputs, cfg)
    engine = _config_of(prepared).engine
    ctx.options["quant_engine"] = engine
    # The record keeps the *requested* engine so a checkpoint replays on another machine.
    record = {**cfg.to_dict(), "input_shape": [1, *ctx.example_inputs.shape[1:]]}
    return PassResult(prepared, True, record=record, info={"engine": engine, "mode": mode})


def _replay_prepare(module: nn.Module, record: dict[str, Any]) -> nn.Module:
    cfg = QuantConfig.from_dict(record)
    backend = get_backend(cfg)
    prepare = backend.prepare_qat if cfg.mode == "qat" else backend.prepare
    return prepare(module, _example_from_record(record), cfg)


@register_pass("quant.prepare", replay=_replay_prepare)
def prepare_pass(module: nn.Module, params: QuantParams, ctx: PassContext) -> PassResult:
    """Static or dynamic: fuse and insert observers (see the module docstring for params)."""
    if params.mode == "qat":
        raise KdrError(error("KDR999", "`quant.prepare` got mode qat; use `quant.prepare_qat`"))
    return _prepare_result(module, params, ctx, params.mode)


@register_pass("quant.prepare_qat", replay=_replay_prepare)
def prepare_qat_pass(module: nn.Module, params: QuantParams, ctx: PassContext) -> PassResult:
    """Fake-quant modules for quantization-aware training."""
    return _prepare_result(module, params, ctx, "qat")


@register_pass("quant.calibrate")
@torch.no_grad()
def calibrate_pass(module: nn.Module, params: CalibrateParams, ctx: PassContext) -> PassResult:
    """Feed ``batches`` batches through the observers (eval mode, no gradients). No replay: the
    observer statistics it gathers are buffers, restored by ``load_state_dict``."""
    cfg = _config_of(module)
    if cfg.mode != "static":
        return PassResult(module, False, info={"batches": 0, "skipped": f"mode {cfg.mode}"})
    if ctx.batches is None:
        raise KdrError(
            error(
                "KDR207",
                "calibration needs data and none is declared",
                None,
                Note(kind="help", message="declare `data ...` in the recipe or pass --data"),
            )
        )
    n = params.batches
    was_training = module.training
    module.eval()
    seen = samples = 0
    device = ctx.example_inputs.device
    try:
        for x, _ in islice(ctx.batches(), n):
            module(x.to(device))
            seen += 1
            samples += len(x)
    finally:
        module.train(was_training)
    return PassResult(module, seen > 0, info={"batches": seen, "samples": samples})


def _replay_convert(module: nn.Module, record: dict[str, Any]) -> nn.Module:
    cfg = _config_of(module)
    return get_backend(cfg).convert(module, cfg)


@register_pass("quant.convert", replay=_replay_convert)
def convert_pass(module: nn.Module, params: QuantParams, ctx: PassContext) -> PassResult:
    """Observed or fake-quant model -> real int8 kernels."""
    del params
    cfg = _config_of(module)
    converted = get_backend(cfg).convert(module, cfg)
    counts = int8_modules(converted)
    ctx.options["quant_engine"] = torch.backends.quantized.engine
    return PassResult(
        converted,
        True,
        record={"engine": cfg.engine},
        info={"int8_modules": counts, "engine": torch.backends.quantized.engine},
    )


__all__ = [
    "QuantConfig",
    "calibrate_pass",
    "convert_pass",
    "prepare_pass",
    "prepare_qat_pass",
    "select_engine",
]
