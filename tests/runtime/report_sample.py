"""A quickstart-like report dict (close accuracies, untrained inputs) for the report's tests."""

from __future__ import annotations

from typing import Any

#: (pass id, op, model, stage, accuracy, size in bytes, latency at batch 1 in ms)
ROWS = (
    ("input", "input", "teacher", None, 0.111, 44_778_443, 4.72),
    ("input", "input", "student", None, 0.094, 384_871, 0.426),
    ("000-train-teacher", "train", "teacher", 0, 0.983, 44_778_443, 4.80),
    ("001-distill-student", "distill", "student", 1, 0.975, 384_871, 0.431),
    ("002-snapshot-student", "snapshot", "dense", 2, 0.975, 384_871, 0.431),
    ("003-prune.channels-student", "prune.channels", "student", 3, 0.912, 101_233, 0.251),
    ("004-distill-student", "distill", "student", 3, 0.9665, 101_233, 0.248),
    ("005-fuse.bn-student", "fuse.bn", "student", 4, 0.9665, 99_001, 0.231),
    ("006-quant.prepare-student", "quant.prepare", "student", 4, 0.9665, 104_551, 0.912),
    ("007-quant.calibrate-student", "quant.calibrate", "student", 4, 0.9663, 104_551, 0.905),
    ("008-quant.convert-student", "quant.convert", "student", 4, 0.9659, 31_877, 0.162),
    ("009-export-student", "export", "student", 5, 0.9659, 31_877, 0.162),
)


def sample_report(noisy_pass: str = "004-distill-student") -> dict[str, Any]:
    stages = []
    for pass_id, op, model, stage, acc, size, ms in ROWS:
        noisy = pass_id == noisy_pass
        entry: dict[str, Any] = {
            "pass_id": pass_id,
            "op": op,
            "model": model,
            "accuracy": acc,
            "params": size // 4,
            "macs": size * 20,
            "size_bytes": size,
            "latency_ms_b1": ms,
            "latency_ms_b32": ms * 17,
            "wall_s": 95.0 if op in ("train", "distill") else 0.8,
            "latency_ms_b1_min": ms * 0.95,
            "latency_ms_b32_min": ms * 16.5,
            "latency_spread_b1": 0.9 if noisy else 0.08,
            "latency_spread_b32": 0.05,
            "latency_ms_b1_cpu": ms * 0.98,
            "latency_ms_b32_cpu": ms * 16.8,
            "latency_rounds": 12,
            "threads": 1,
            "load_avg": 2.74,
            "noisy": noisy,
            "sparsity": 0.0,
            "compressed_size_bytes": size * 9 // 10,
            "nm_pattern": None,
            "nm_conformance": None,
        }
        if stage is not None:
            entry["stage"] = stage
        stages.append(entry)
    final: dict[str, Any] = {}
    for e in stages:
        final[e["model"]] = e
    return {
        "recipe": "quickstart",
        "plan_hash": "a3601124f2f3615aa06c1865c2d2ce12ffa3020825a50efa8a9175e85702e63f",
        "device": "cpu",
        "wall_s": 1001.2,
        "machine": {"cpus": 2},
        "teachers": ["teacher"],
        "stages": stages,
        "final": final,
    }


#: (pass id, op, stage, accuracy, sparsity, compressed size, N:M pattern) of a weight-pruning
#: run on the student after its distillation (the rest as in ``sample_report``).
SPARSE_ROWS = (
    ("003-prune.weights-student", "prune.weights", 3, 0.9612, 0.5, 201_001, None),
    ("004-distill-student", "distill", 3, 0.9721, 0.5, 200_552, None),
    ("005-prune.weights-student", "prune.weights", 4, 0.9588, 0.7504, 139_870, "2:4"),
    ("006-distill-student", "distill", 4, 0.9702, 0.7504, 139_020, "2:4"),
)


def sparse_report() -> dict[str, Any]:
    """``sample_report`` up to the distillation, then two weight prunes (the second 2:4), each
    with its recovery."""
    report = sample_report()
    stages = [e for e in report["stages"] if e.get("stage") is None or e["stage"] <= 2]
    template = stages[-1]
    for pass_id, op, stage, acc, share, zipped, nm in SPARSE_ROWS:
        e = dict(template, pass_id=pass_id, op=op, model="student", stage=stage, accuracy=acc)
        e.update(sparsity=share, compressed_size_bytes=zipped, nm_pattern=nm)
        e["nm_conformance"] = 1.0 if nm else None
        stages.append(e)
    report["stages"] = stages
    report["final"] = {e["model"]: e for e in stages}
    return report


def _curves(steps: int, peak: float, milestones: tuple[int, ...], loss0: float) -> dict[str, Any]:
    """A training entry's ``train`` fields: warmup 10 steps then x0.1 at each milestone."""
    lr_steps = sorted({0, steps - 1, *range(0, steps, 25), *range(0, steps, 50)})

    def lr(s: int) -> float:
        return peak * (s + 1) / 10 if s < 10 else peak * 0.1 ** sum(s >= m for m in milestones)

    return {
        "loss_first": loss0,
        "loss_last": loss0 / 8,
        "steps": steps,
        "samples_per_s": 2000.0,
        "lr_curve": [[s, lr(s)] for s in lr_steps],
        "loss_curve": [[s, loss0 / (1 + s / 20)] for s in range(4, steps, 5)],
    }


def training_report() -> dict[str, Any]:
    """``sample_report`` whose training passes recorded their curves; the student's distill
    validated every epoch (4 of 25 steps) and kept its third."""
    report = sample_report()
    by_id = {e["pass_id"]: e for e in report["stages"]}
    by_id["000-train-teacher"]["train"] = _curves(100, 5e-3, (50, 75), 2.3)
    distill = _curves(100, 5e-3, (60,), 3.0)
    distill["val_curve"] = [
        {"epoch": e, "accuracy": a, "loss": 1 - a} for e, a in enumerate((0.9, 0.95, 0.97, 0.96), 1)
    ]
    distill["best_epoch"] = 3
    by_id["001-distill-student"]["train"] = distill
    by_id["004-distill-student"]["train"] = _curves(50, 1e-3, (), 0.8)
    return report
