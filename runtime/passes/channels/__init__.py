"""Channel pruning: the dependency graph of coupled channels, and the ``prune.channels`` pass.

- :mod:`.graph` (union-find over channel atoms, endpoints) and :mod:`.groups` (coupled sets);
- :mod:`.op_rules` (the rule registry) with :mod:`.rules_tensor` and :mod:`.rules_layers`;
- :mod:`.walker` (visits the fx graph), :mod:`.shapes` (records shapes), :mod:`.build`;
- :mod:`.importance` (criteria), :mod:`.prune` (choose and record), :mod:`.surgery`
  (per-layer pruners), :mod:`.budget` (ratio search), :mod:`.op` (the registered pass).

Importing this package registers ``prune.channels``.
"""

from .budget import count_macs, search_ratio
from .build import build
from .graph import DependencyGraph, Endpoint, Group
from .importance import CRITERIA, group_importance
from .op import prune_channels, replay_channels
from .prune import count_params, prune_model, select_groups
from .surgery import PRUNERS, apply_record, register_pruner

__all__ = [
    "CRITERIA",
    "PRUNERS",
    "DependencyGraph",
    "Endpoint",
    "Group",
    "apply_record",
    "build",
    "count_macs",
    "count_params",
    "group_importance",
    "prune_channels",
    "prune_model",
    "register_pruner",
    "replay_channels",
    "search_ratio",
    "select_groups",
]
