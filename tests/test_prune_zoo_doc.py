"""The prune zoo: its docs table is generated from its results, and its summary from its rows.

- ``docs/pruning.md`` holds, between the ``prune_zoo`` markers, exactly what
  ``bench/zoo/table.py`` renders from ``bench/results/prune_zoo.json``;
- the JSON's summary counts what its rows say (recounted here independently of
  ``bench/zoo/summary.py``), and the run covered the whole zoo;
- the zoo itself: at least 48 timm models, the ones the issue names among them;
- the runner: a child that raises, hangs or dies costs its own cell, keeping what it reported.

Nothing here builds a model: the bench measured, these tests read (the runner's children run
a stand-in for the measurement).
"""

from __future__ import annotations

import copy
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench/ is not an installed package

from bench._results import results_path  # noqa: E402
from bench.zoo import summary, table  # noqa: E402
from bench.zoo.models import QUICK, ZOO  # noqa: E402

NAMED_BY_THE_ISSUE = [
    "cspresnet50",
    "dpn68",
    "densenet121",
    "inception_v3",
    "repvgg_a0",
    "mobileone_s0",
    "ese_vovnet19b_dw",
    "mobilenetv4_conv_small",
    "fbnetc_100",
    "efficientnet_b0",
    "mobilenetv3_small_100",
    "regnety_002",
    "rexnet_100",
    "tinynet_e",
    "lcnet_050",
    "mnasnet_small",
    "ghostnet_100",
    "res2net50_14w_8s",
    "edgenext_xx_small",
    "starnet_s1",
    "resmlp_12_224",
    "convnext_atto",
    "convnextv2_atto",
    "vit_tiny_patch16_224",
    "deit_tiny_patch16_224",
    "swin_tiny_patch4_window7_224",
    "coat_lite_tiny",
    "levit_128s",
    "pvt_v2_b0",
    "resnest14d",
    "nfnet_l0",
    "tf_efficientnetv2_b0",
    "mobilevit_xxs",
    "mobilevitv2_050",
    "efficientvit_b0",
    "resnet18",
    "resnet50",
    "seresnext26d_32x4d",
    "regnetx_002",
    "mixnet_s",
    "dla34",
    "hrnet_w18_small",
    "vgg11",
    "xception41",
    "ghostnetv2_100",
    "hardcorenas_a",
    "semnasnet_050",
    "spnasnet_100",
    "mobilenetv2_050",
    "gernet_s",
    "ecaresnet26t",
    "selecsls42b",
    "poolformer_s12",
]


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return table.load()


def _cell(**kw: Any) -> dict[str, Any]:
    base = {"status": "pruned", "forward": True, "train_step": True, "replay": True}
    return {**base, **kw}


def _row(name: str, kdr: dict[str, Any], tp: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "family": "x", "input": 64, "kdr": kdr, "tp": tp}


def test_the_zoo_is_broad_and_has_every_model_the_issue_names() -> None:
    names = [n for n, _ in ZOO]
    assert len(names) >= 48 and len(set(names)) == len(names)
    assert not set(NAMED_BY_THE_ISSUE) - set(names)
    assert set(QUICK) <= set(names) and 6 <= len(QUICK) <= 10


def test_the_docs_table_is_the_one_generated_from_the_results(data: dict[str, Any]) -> None:
    doc = table.DOC.read_text(encoding="utf-8")
    assert table.current(doc) == table.render(data), "stale: run python -m bench.zoo.table"
    assert doc.count(table.BEGIN) == doc.count(table.END) == 1


def test_the_full_run_covered_the_whole_zoo(data: dict[str, Any]) -> None:
    assert data["quick"] is False
    assert [r["name"] for r in data["models"]] == [n for n, _ in ZOO]
    settings = data["settings"]
    assert settings["ratio"] == 0.5
    for key in ("torch", "timm", "torch_pruning", "loadavg_start", "loadavg_end", "wall_s"):
        assert key in settings, key
    for row in data["models"]:
        assert row["input"] in (64, 96, 128, 224, None), row["name"]


def test_the_summary_counts_what_the_rows_say(data: dict[str, Any]) -> None:
    rows, s = data["models"], data["summary"]
    assert s == summary.summarize(rows)
    assert s["models"] == len(rows)
    for tool in ("kdr", "tp"):
        cells = [r[tool] for r in rows]
        running = [c for c in cells if c.get("status") == "pruned" and c.get("forward") is True]
        assert s[tool]["works"] == len(running)
        assert s[tool]["broken"] == sum(
            c.get("status") == "pruned" and c.get("forward") is not True for c in cells
        )
        assert s[tool]["params_le_0.35"] == sum(c["params_ratio"] <= 0.35 for c in running)
        assert s[tool]["params_le_0.40"] == sum(c["params_ratio"] <= 0.40 for c in running)
        assert s[tool]["pruned"] + s[tool]["declined"] + s[tool]["errors"] == len(rows)
        for c in running:
            assert 0 < c["params_ratio"] <= 1, c
            assert c["macs_ratio"] is None or 0 < c["macs_ratio"] <= 1.0001, c
    assert s["tp"]["declined"] == 0  # Torch-Pruning has no way to decline


def test_summary_and_reasons_on_rows_made_by_hand() -> None:
    blocked = summary.tally(["`a` (call_method chunk) is not understood"] * 2 + ["model output"])
    assert blocked == {"`…` (call_method chunk) is not understood": 2, "model output": 1}
    rows = [
        _row(
            "a",
            _cell(params_ratio=0.3, macs_ratio=0.3, blocked=blocked, prune_s=1.25),
            _cell(params_ratio=0.3),
        ),
        _row("b", _cell(params_ratio=0.38, replay=False), _cell(forward=False, params_ratio=0.2)),
        _row(
            "c",
            {
                "status": "declined",
                "error": "KDR502: nothing to prune (help: blocked because: "
                "`x` (call_method chunk) is not understood; `y` reads the channel count)",
            },
            {"status": "error", "error": "AttributeError: no"},
        ),
    ]
    s = summary.summarize(rows)
    assert (s["kdr"]["works"], s["kdr"]["declined"], s["kdr"]["replay_fails"]) == (2, 1, 1)
    assert (s["kdr"]["params_le_0.35"], s["kdr"]["params_le_0.40"]) == (1, 2)
    assert (s["tp"]["works"], s["tp"]["broken"], s["tp"]["errors"]) == (1, 1, 1)
    assert s["tp"]["params_le_0.35"] == 1  # the broken 0.2 does not count
    top = {r["reason"]: r["models"] for r in s["top_kdr_reasons"]}
    assert top == {
        "`…` (call_method chunk) is not understood": 2,
        "`…` reads the channel count": 1,
    }
    block = table.render({"summary": s, "settings": _SETTINGS, "models": rows})
    assert "| a | 64 | 0.30 | 0.30 | ok |" in block and "| 1.2 / – |" in block
    assert "| b | 64 | 0.38 | – | fails: replay | – | – | **broken** |" in block
    assert "declined (KDR502)" in block and "| error | – / – |" in block
    # b blocks nothing yet keeps 0.38: said so, rather than an empty reason
    line_b = next(line for line in block.splitlines() if line.startswith("| b |"))
    assert line_b.endswith(f"| {table.NOTHING_BLOCKED} |")


_SETTINGS = {"torch": "t", "timm": "m", "torch_pruning": "p"}


def test_a_stale_or_missing_table_is_caught(data: dict[str, Any]) -> None:
    doc = f"intro\n{table.BEGIN}\nold table\n{table.END}\nafter\n"
    new = table.splice(doc, "new table")
    assert table.current(new) == "new table" and new.endswith(f"{table.END}\nafter\n")
    changed = copy.deepcopy(data)
    changed["models"][0]["kdr"]["params_ratio"] = 0.999
    changed["models"][0]["kdr"].update(status="pruned", forward=True, macs_ratio=0.5)
    assert table.render(changed) != table.render(data)
    with pytest.raises(ValueError):
        table.current("no markers here")
    assert results_path("prune_zoo", True).name == "prune_zoo_quick.json"


# -- the runner: one child per cell, whatever the child does ---------------------------------


def _partial_then(what: str) -> Any:
    def fake(name: str, tool: str, send: Any, size: int | None = None) -> None:
        if what != "raise at once":
            send({"tool": tool, "status": "pruned", "forward": True, "input": 64})
        if what in ("raise", "raise at once"):
            raise RuntimeError("boom")
        if what == "hang":
            time.sleep(60)
        if what == "die":
            os._exit(3)

    return fake


@pytest.fixture(scope="module")
def runner() -> Any:
    pytest.importorskip("timm")
    from bench import prune_zoo

    return prune_zoo


@pytest.mark.parametrize("what", ["raise", "raise at once", "hang", "die"])
def test_a_cell_survives_its_child(what: str, runner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The forked child runs the (patched) measure: an exception, a hang or a hard exit costs
    that cell only, and what was reported before it is kept."""
    monkeypatch.setattr(runner, "measure", _partial_then(what))
    row = runner.run_cell("resnet18", "kdr", None, timeout=2.0)
    assert row["seconds"] < 10
    if what == "raise at once":
        assert (row["status"], row["error"]) == ("error", "RuntimeError: boom")
        return
    assert (row["status"], row["forward"], row["input"]) == ("pruned", True, 64)
    assert {"raise": "exception", "hang": "timeout", "die": "crash"}[what] in row
