"""Writing a finished model: ``checkpoint``, ``torchscript``, ``pt2`` or ``onnx``.

- ``checkpoint``: a kdr checkpoint (see :mod:`runtime.checkpoint`) holding the state dict and
  whatever ``extra`` plain data the caller adds (the model spec and pass history, so that
  ``kdr`` can rebuild the structure);
- ``torchscript``: ``torch.jit.trace`` on the example input (``torch.jit.script`` if tracing
  fails), saved with ``torch.jit.save``;
- ``pt2``: ``torch.export.export`` (batch axis dynamic) + ``torch.export.save``;
- ``onnx``: ``torch.onnx.export`` with the TorchScript-based exporter (``dynamo=False``: the
  dynamo exporter needs ``onnxscript``, which kdr does not depend on), opset 17, batch axis
  dynamic, input ``input`` and output ``logits``.

A model whose forward returns something else than a tensor (a Hugging Face ``ModelOutput``, a
tuple) is exported wrapped in :class:`~runtime.models.outputs.LogitsOnly`: the file computes the
logits, as a classifier's consumers expect.

The model is exported in eval mode on CPU; its mode is restored afterwards. Failures are
``KDR505`` diagnostics naming the format and the path.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compiler.vocab import EXPORT_FORMATS
from recipe_lang.diagnostics import KdrError, Note, error
from runtime.checkpoint import atomic_write_bytes, save_checkpoint
from runtime.export_dynamic import bind_default_inputs, has_dynamic_linear, onnx_dynamic_int8
from runtime.models.outputs import LogitsOnly

#: The export formats, named once in the compiler (``compiler.vocab.EXPORT_FORMATS``).
FORMATS = EXPORT_FORMATS


def _fail(fmt: str, path: Path, exc: BaseException, help_text: str) -> KdrError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return KdrError(
        error(
            "KDR505",
            f"cannot export to {fmt} `{path}`: {first}",
            None,
            Note(kind="help", message=help_text),
        )
    )


def _torchscript(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted: Any = torch.jit.trace(model, example, check_trace=False)
    except Exception:
        scripted = torch.jit.script(model)
    torch.jit.save(scripted, str(path))


def _pt2(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    if example.shape[0] < 2:  # a batch of 1 would be specialised: keep the batch axis dynamic
        example = example.repeat(2, *([1] * (example.dim() - 1)))
    batch = torch.export.Dim.AUTO
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))


def _onnx(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )


def export_model(
    model: nn.Module,
    fmt: str,
    path: str | Path,
    example_input: torch.Tensor,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as ``fmt`` to ``path`` (parents created); returns the path."""
    path = Path(path).expanduser()
    if fmt not in FORMATS:
        raise KdrError(
            error(
                "KDR103",
                f"unknown export format `{fmt}`",
                None,
                Note(kind="help", message=f"use one of {', '.join(FORMATS)}"),
            )
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "checkpoint":
        save_checkpoint(path, {**(extra or {}), "state_dict": model.state_dict()})
        return path
    was_training = model.training
    model.eval()
    example = example_input.detach().cpu()
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        with torch.no_grad():
            target = model if isinstance(model(example), torch.Tensor) else LogitsOnly(model)
            if fmt == "onnx":
                target = bind_default_inputs(target)
            if fmt == "onnx" and has_dynamic_linear(target):
                onnx_dynamic_int8(target, tmp, example, _onnx)
            else:
                {"torchscript": _torchscript, "pt2": _pt2, "onnx": _onnx}[fmt](target, tmp, example)
        atomic_write_bytes(path, tmp.read_bytes())
    except KdrError:
        raise
    except Exception as exc:
        help_text = {
            "onnx": "quantized (int8) torch.fx models may not export to ONNX; try torchscript",
            "pt2": "torch.export needs a model without data-dependent control flow",
            "torchscript": "the model could be neither traced nor scripted",
        }[fmt]
        raise _fail(fmt, path, exc, help_text) from exc
    finally:
        model.train(was_training)
        with contextlib.suppress(OSError):
            tmp.unlink()
    return path


def load_exported(fmt: str, path: str | Path) -> Any:
    """Reload an export as something callable on a batch (an onnxruntime session for ONNX:
    call ``run_onnx``)."""
    path = str(path)
    if fmt == "torchscript":
        return torch.jit.load(path, map_location="cpu")
    if fmt == "pt2":
        return torch.export.load(path).module()
    if fmt == "onnx":
        import onnxruntime as ort

        return ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    raise ValueError(f"no loader for format {fmt!r}")


def run_onnx(session: Any, x: torch.Tensor) -> torch.Tensor:
    """Run an onnxruntime session from :func:`load_exported` on ``x``."""
    (out,) = session.run(["logits"], {"input": x.detach().cpu().numpy()})
    return torch.from_numpy(out)
