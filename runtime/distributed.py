"""Data-parallel runs: ``kdr run --nproc-per-node N`` under ``torchrun`` with DDP.

``kdr run --nproc-per-node N`` (or ``--nnodes``/``--rdzv-endpoint``) re-launches itself as
``python -m torch.distributed.run --nproc-per-node N ... -m kdr run <same arguments>``; a
``kdr run`` started by torchrun (``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set) runs as one
rank. Every rank executes the whole plan:

* training and distillation run under DDP: every rank draws the *same* shuffled global batch
  (same seed, same generator) and trains on its shard ``batch[rank::world_size]``, so the
  per-rank batch is the recipe's ``batch_size / world_size`` and the global batch, the step
  count and the schedule are those of a one-process run; BatchNorm statistics are per rank
  during a step and rank 0's are broadcast at the end of each stage;
* graph passes are deterministic and run on every rank; the ranks then compare a checksum of
  the model's state dict and stop if they disagree;
* rank 0 alone measures stages, writes checkpoints, the manifest and the reports; the others
  wait at a barrier after each pass, which also tells them whether rank 0 succeeded.

See ``docs/distributed.md``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from recipe_lang.diagnostics import KdrError, Note, error

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in TORCHRUN_ENV)


def wants_launch(nproc_per_node: int, nnodes: str | int = 1) -> bool:
    """Whether ``kdr run`` should re-launch itself through torchrun."""
    return not launched_by_torchrun() and (int(nproc_per_node) > 1 or str(nnodes) not in ("1",))


def torchrun_command(
    argv: Sequence[str],
    nproc_per_node: int,
    nnodes: str | int = 1,
    rdzv_endpoint: str | None = None,
) -> list[str]:
    """``python -m torch.distributed.run ... -m kdr <argv>`` (``argv`` starts with ``run``)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc_per_node}"]
    if rdzv_endpoint:
        cmd += [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
    elif str(nnodes) == "1":
        cmd += ["--standalone"]
    else:
        raise KdrError(
            error(
                "KDR103",
                f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT",
                None,
                Note(kind="help", message="give every node the same --rdzv-endpoint"),
            )
        )
    return [*cmd, "-m", "kdr", *argv]


def relaunch(
    argv: Sequence[str],
    nproc_per_node: int,
    nnodes: str | int = 1,
    rdzv_endpoint: str | None = None,
) -> int:
    """Run ``kdr <argv>`` under torchrun and return its exit status."""
    cmd = torchrun_command(argv, nproc_per_node, nnodes, rdzv_endpoint)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])  # kdr importable in the children
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    try:
        with subprocess.Popen(
            cmd, env=env, stderr=subprocess.PIPE, text=True, errors="replace"
        ) as proc:
            assert proc.stderr is not None
            _relay(proc.stderr)
            status = proc.wait()
    except KeyboardInterrupt:
        return 130
    if status != 0:
        print(f"kdr: the distributed run failed (torchrun exit {status})", file=sys.stderr)
    return 1 if status != 0 else 0


def _relay(stream: Any) -> None:
    """Pass the ranks' stderr through, minus torchrun's own failure report (a traceback and a
    ChildFailedError table): the ranks have printed their diagnostics already."""
    launcher_noise = False
    for line in stream:
        if line.startswith("Traceback (most recent call last)") or (
            line.startswith(("E", "W")) and "torch/distributed/elastic" in line
        ):
            launcher_noise = True
        if not launcher_noise:
            sys.stderr.write(line)
            sys.stderr.flush()


# ---- the process group ----------------------------------------------------------------------
def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def init() -> bool:
    """Join torchrun's process group (gloo on CPU, nccl on GPU); False when not under it."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) < 2:
        return False
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group(backend)
    return True


def shutdown() -> None:
    """Leave the process group together: every rank meets at a barrier first, so none tears
    gloo down while a peer still talks to it (which aborted a rank with "terminate called
    without an active exception"). A peer that is gone is waited for at most 60 s."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=60))
        else:
            dist.barrier()
    except RuntimeError:
        pass  # a peer failed or left: tear down all the same
    dist.destroy_process_group()


def _device() -> torch.device:
    return torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")


def all_ok(ok: bool) -> bool:
    """A barrier that also tells whether every rank got there without an error."""
    if not is_distributed():
        return ok
    flag = torch.tensor([0 if ok else 1], device=_device())
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item()) == 0


def peer_failed(what: str) -> KdrError:
    return KdrError(
        error(
            "KDR504",
            f"rank {rank()}: another rank failed {what}; its diagnostics say why",
            None,
            Note(kind="help", message="fix the cause and rerun with --resume"),
        )
    )


# ---- agreement of the ranks -------------------------------------------------------------------
def state_checksum(model: nn.Module) -> int:
    """A 62-bit digest of the model's state dict (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu()
            if t.is_quantized:
                t = t.int_repr()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            try:
                h.update(t.contiguous().view(torch.uint8).numpy().tobytes())
            except (RuntimeError, TypeError):
                h.update(repr(t.tolist()).encode())
        else:
            h.update(repr(value).encode())
    return int.from_bytes(h.digest()[:8], "big") >> 2


def check_agreement(model: nn.Module, what: str) -> None:
    """Raise if the ranks' copies of ``model`` differ (graph passes must be deterministic)."""
    if not is_distributed():
        return
    mine = state_checksum(model)
    both = torch.tensor([mine, -mine], dtype=torch.int64, device=_device())
    dist.all_reduce(both, op=dist.ReduceOp.MAX)
    if int(both[0]) != mine or int(both[1]) != -mine:
        raise KdrError(
            error(
                "KDR999",
                f"ranks disagree on the model after {what} (rank {rank()})",
                None,
                Note(
                    kind="help",
                    message="a graph pass is not deterministic; run it with "
                    "--nproc-per-node 1 and report it",
                ),
            )
        )


def broadcast_buffers(model: nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics) after DDP training."""
    if not is_distributed():
        return
    for buf in model.buffers():
        dist.broadcast(buf.data, src=0)


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    if device.type != "cuda":
        return DistributedDataParallel(model)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return DistributedDataParallel(model, device_ids=[index])


def shard(batch: torch.Tensor) -> torch.Tensor:
    """This rank's part of a global batch: ``batch[rank::world_size]``."""
    return batch[rank() :: world_size()] if is_distributed() else batch
