"""torch.ao's FX graph mode quantization as a kdr quantization backend.

``prepare_fx`` traces the model, fuses Conv/BN/ReLU (static, in eval mode) and inserts
observers; ``prepare_qat_fx`` inserts fake-quant modules instead; ``convert_fx`` swaps them for
real int8 modules (``QuantizedConvReLU2d``, ``QuantizedLinear``, dynamic ``Linear``...) that
run FBGEMM/oneDNN (x86) or QNNPACK (ARM) kernels. torch.ao.quantization is deprecated upstream
in favour of torchao's PT2E flow, but it is the flow that yields eager int8 kernels without a
compiler; its warnings are silenced locally by :func:`quiet_quantization`.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import fx, nn

from runtime.passes.quant_backends.config import QuantConfig, choose_engine, quiet_quantization


class TorchAOFXBackend:
    """torch.ao's FX graph mode quantization (``prepare_fx``/``convert_fx``)."""

    name = "fx"

    def available(self) -> bool:
        try:
            from torch.ao.quantization import quantize_fx  # noqa: F401
        except ImportError:
            return False
        return True

    def qconfig_mapping(self, cfg: QuantConfig, engine: str) -> Any:
        from torch.ao.quantization import (
            QConfig,
            QConfigMapping,
            default_dynamic_qconfig,
            default_qat_qconfig,
            default_weight_observer,
            get_default_qat_qconfig_mapping,
            get_default_qconfig_mapping,
            per_channel_dynamic_qconfig,
        )
        from torch.ao.quantization.observer import HistogramObserver

        if cfg.mode == "dynamic":
            linear = per_channel_dynamic_qconfig if cfg.granularity == "per_channel" else None
            linear = linear or default_dynamic_qconfig
            # Linear+ReLU fuse into one dynamic kernel, and fusion demands equal qconfigs on
            # every module of a fused pattern, so ReLU (and Conv, fused with ReLU) carry the
            # Linear's qconfig; there are no dynamic conv kernels, so convs stay float.
            mapping = QConfigMapping().set_object_type(nn.LSTM, default_dynamic_qconfig)
            for kind in (nn.Linear, nn.ReLU, nn.functional.relu, nn.Conv1d, nn.Conv2d, nn.Conv3d):
                mapping.set_object_type(kind, linear)
            return mapping
        if cfg.mode == "qat":
            mapping = get_default_qat_qconfig_mapping(engine)
            if cfg.granularity == "per_tensor":
                mapping.set_global(default_qat_qconfig)
            return mapping
        mapping = get_default_qconfig_mapping(engine)
        if cfg.granularity == "per_tensor":
            # x86/fbgemm kernels need 7-bit activations to avoid overflow (reduce_range).
            reduce = engine in ("x86", "fbgemm")
            activation = HistogramObserver.with_args(reduce_range=reduce)
            mapping.set_global(QConfig(activation=activation, weight=default_weight_observer))
        return mapping

    def _prepare(
        self, model: nn.Module, example_inputs: torch.Tensor, cfg: QuantConfig, qat: bool
    ) -> nn.Module:
        from torch.ao.quantization import quantize_fx

        engine = choose_engine(cfg.engine)
        torch.backends.quantized.engine = engine
        mapping = self.qconfig_mapping(cfg, engine)
        model = copy.deepcopy(model)  # prepare_fx fuses modules and sets modes in place
        with quiet_quantization():
            if qat:
                prepared = quantize_fx.prepare_qat_fx(model.train(), mapping, (example_inputs,))
            else:
                prepared = quantize_fx.prepare_fx(model.eval(), mapping, (example_inputs,))
        prepared.meta["kdr_quant"] = {**cfg.to_dict(), "engine": engine}
        return prepared

    def prepare(
        self, model: nn.Module, example_inputs: torch.Tensor, cfg: QuantConfig
    ) -> nn.Module:
        return self._prepare(model, example_inputs, cfg, qat=False)

    def prepare_qat(
        self, model: nn.Module, example_inputs: torch.Tensor, cfg: QuantConfig
    ) -> nn.Module:
        return self._prepare(model, example_inputs, cfg, qat=True)

    def convert(self, prepared: nn.Module, cfg: QuantConfig) -> nn.Module:
        from torch.ao.quantization import quantize_fx

        if not isinstance(prepared, fx.GraphModule):
            raise TypeError("convert expects the GraphModule returned by prepare/prepare_qat")
        torch.backends.quantized.engine = choose_engine(cfg.engine)
        with quiet_quantization():
            # convert_fx rewrites its input's graph; keep the observed model usable.
            return quantize_fx.convert_fx(copy.deepcopy(prepared).eval())

    def rebuild(
        self, fresh: nn.Module, example_inputs: torch.Tensor, cfg: QuantConfig
    ) -> nn.Module:
        prepare = self.prepare_qat if cfg.mode == "qat" else self.prepare
        return self.convert(prepare(fresh, example_inputs, cfg), cfg)
