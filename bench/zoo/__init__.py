"""The prune zoo: kdr and Torch-Pruning side by side on many timm architectures.

- :mod:`.models`: the architectures (one per family and then some), and the ``--quick`` subset;
- :mod:`.measure`: one model, one tool, in a child process (build, prune, check, replay);
- :mod:`.summary`: the run's summary figures and the reasons kdr gave, from the rows alone;
- :mod:`.table`: the table of ``docs/pruning.md`` generated from ``bench/results/prune_zoo.json``.

The entry point is ``bench/prune_zoo.py``.
"""
