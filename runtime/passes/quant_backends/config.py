"""What every quantization backend shares: the config, the engine choice, the interface.

The engine is chosen for the machine (x86/fbgemm on x86_64, qnnpack on ARM) and set globally
in ``torch.backends.quantized.engine``, because int8 kernels are packed for, and run with,
the engine that is current; none available is KDR503.

>>> choose_engine("auto") in {"x86", "fbgemm", "onednn", "qnnpack"}
True
>>> QuantConfig.from_dict({"mode": "dynamic"}).granularity
'per_channel'
"""

from __future__ import annotations

import contextlib
import platform
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch
from torch import nn

from compiler.vocab import QUANT_GRANULARITIES, QUANT_MODES
from recipe_lang.diagnostics import KdrError, Note, error

MODES = QUANT_MODES
GRANULARITIES = QUANT_GRANULARITIES
_X86 = ("x86_64", "amd64", "i386", "i686", "x86")
#: Engine preference per architecture: x86 (fbgemm + onednn dispatch) beats plain fbgemm.
_PREFERRED = {"x86": ("x86", "fbgemm", "onednn"), "arm": ("qnnpack",)}


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize: ``mode`` static|dynamic|qat, ``granularity`` of the weight scales,
    ``engine`` (``auto`` picks the machine's), ``backend`` (a key of
    :data:`runtime.passes.quant_backends.BACKENDS`)."""

    mode: str = "static"
    granularity: str = "per_channel"
    engine: str = "auto"
    backend: str = "fx"

    def __post_init__(self) -> None:
        for field, value, allowed in (
            ("mode", self.mode, MODES),
            ("granularity", self.granularity, GRANULARITIES),
        ):
            if value not in allowed:
                raise KdrError(
                    error(
                        "KDR103",
                        f"unknown quantization {field} `{value}`",
                        None,
                        Note(kind="help", message=f"expected one of {', '.join(allowed)}"),
                    )
                )

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantConfig:
        keys = ("mode", "granularity", "engine", "backend")
        return cls(**{k: str(data[k]) for k in keys if data.get(k) is not None})


def engine_error(message: str, supported: list[str]) -> KdrError:
    have = ", ".join(supported) or "none"
    return KdrError(
        error(
            "KDR503",
            message,
            None,
            Note(message=f"this PyTorch build supports int8 engines: {have}"),
            Note(
                kind="help",
                message="install a PyTorch build with FBGEMM/x86 (x86_64) or QNNPACK (ARM) "
                "kernels, run on such a machine, or remove the `quantize` stage",
            ),
        )
    )


def supported_engines() -> list[str]:
    """The int8 engines this PyTorch build has (a seam: tests patch it, torch's is read-only)."""
    return [e for e in torch.backends.quantized.supported_engines if e != "none"]


def choose_engine(requested: str = "auto") -> str:
    """The int8 engine to use: ``requested`` if this build has it, else the machine's best."""
    supported = supported_engines()
    if requested != "auto":
        if requested not in supported:
            raise engine_error(f"int8 engine `{requested}` is unavailable here", supported)
        return requested
    machine = platform.machine().lower()
    arch = "x86" if machine in _X86 else "arm"
    for engine in _PREFERRED[arch]:
        if engine in supported:
            return engine
    raise engine_error(f"no int8 engine for this {machine} machine", supported)


@contextlib.contextmanager
def quiet_quantization() -> Iterator[None]:
    """torch.ao.quantization warns that it is deprecated, that uncalibrated observers return
    default scales (expected when replaying) and about ``reduce_range``; none of it is
    actionable for a recipe author, so silence it here only."""
    with warnings.catch_warnings():
        for pattern in (
            ".*deprecated.*",
            "must run observer.*",
            "Please use quant_min and quant_max.*",
            ".*_check_is_valid_config_dict.*",
        ):
            warnings.filterwarnings("ignore", message=pattern)
        yield


class QuantBackend(Protocol):
    """What kdr needs from a quantization toolkit; one implementation per toolkit."""

    name: str

    def available(self) -> bool: ...

    def prepare(
        self, model: nn.Module, example_inputs: torch.Tensor, cfg: QuantConfig
    ) -> nn.Module:
        """Observers (static) or dynamic markers, in eval mode."""
        ...

    def prepare_qat(
        self, model: nn.Module, example_inputs: torch.Tensor, cfg: QuantConfig
    ) -> nn.Module:
        """Fake-quant modules; the result trains like any ``nn.Module``."""
        ...

    def convert(self, prepared: nn.Module, cfg: QuantConfig) -> nn.Module:
        """Real int8 kernels."""
        ...

    def rebuild(
        self, fresh: nn.Module, example_inputs: torch.Tensor, cfg: QuantConfig
    ) -> nn.Module:
        """The converted structure, without data, ready for ``load_state_dict``."""
        ...
