"""What every op handler works with: the plan, the options, the data and the live models."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compiler.plan import Plan
from runtime.data import DataBundle
from runtime.modelstore import ModelStore
from runtime.run.options import RunOptions
from runtime.workspace import RunDir, RunState


@dataclass
class RunContext:
    plan: Plan
    options: RunOptions
    device: torch.device
    rundir: RunDir
    data: DataBundle
    store: ModelStore
    #: A batch of inputs for shape checks and exports.
    example: torch.Tensor
    state: RunState
