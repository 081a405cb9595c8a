"""The docs cannot drift: rules.md is generated, language.md names what the compiler knows."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest
from kdr_golden import ROOT

from compiler import vocab as stages
from compiler.catalogue import CATALOGUE
from compiler.driver import compile_source
from compiler.optim_params import SCHEDULE_ARGS
from compiler.optim_values import REQUIRED_ARGS, SCHEDULE_DEFAULTS
from compiler.plan import schema_json
from compiler.settings import DEFAULT_SETTINGS
from recipe_lang.grammar import KEYWORDS

DOCS = ROOT / "docs"
LANGUAGE = (DOCS / "language.md").read_text(encoding="utf-8")


def _gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", DOCS / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _gen_docs()


def test_rules_md_is_generated():
    assert (DOCS / "rules.md").read_text(encoding="utf-8") == GEN.rules_markdown()


def test_rules_md_lists_every_code_with_its_severity_and_examples():
    text = GEN.rules_markdown()
    for c in CATALOGUE.values():
        assert f"## {c.code}\n\n**{c.severity}**: {c.title}" in text
        assert c.explanation in text
        if c.bad.strip():
            assert c.bad.rstrip("\n") in text
    for lim in GEN.LIMITS:
        assert f"| {lim.option} | {lim.allowed} |" in text


@pytest.mark.parametrize("lim", GEN.LIMITS, ids=lambda lim: lim.option)
def test_kdr102_limits_match_the_compiler(lim):
    outside = compile_source(lim.template.format(lim.outside))
    inside = compile_source(lim.template.format(lim.inside))
    assert "KDR102" in [d.code for d in outside.diagnostics]
    assert [d.code for d in inside.diagnostics if d.is_error] == []


def test_gen_docs_check_mode():
    proc = subprocess.run([sys.executable, str(DOCS / "gen_docs.py"), "--check"], cwd=ROOT)
    assert proc.returncode == 0


def test_schema_file_is_current():
    assert (DOCS / "plan.schema.json").read_text(encoding="utf-8") == schema_json()


# ---- language.md --------------------------------------------------------------------------------


def _words(*tables):
    out = []
    for t in tables:
        out += list(t)
    return out


def test_language_md_names_every_option_word():
    words = _words(
        stages.PRUNE_WORDS,
        stages.QUANT_WORDS,
        stages.CRITERIA,
        stages.WEIGHT_CRITERIA,
        stages.CURVES,
        stages.EXPORT_FORMATS,
        stages.MODIFIERS,
        stages.REPLACEMENTS,
        stages.BUDGET_UNITS,
        stages.QUANT_PRECISIONS,
        DEFAULT_SETTINGS,
    )
    missing = [
        w for w in words if f"`{w}`" not in LANGUAGE and not re.search(rf"\b{w}\b", LANGUAGE)
    ]
    assert missing == []
    assert [k for k in DEFAULT_SETTINGS if f"| `{k}` |" not in LANGUAGE] == []
    assert [k for k in sorted(KEYWORDS) if f" {k}" not in LANGUAGE.split("**Keywords**")[1]] == []


def test_language_md_stage_ops():
    ops = [
        "train", "distill", "snapshot", "prune.channels", "prune.weights", "replace.K", "fuse.bn",
        "prune.channels.gradual", "prune.weights.gradual",
        "quant.prepare", "quant.calibrate", "quant.prepare_qat", "quant.convert", "evaluate",
        "export",
    ]  # fmt: skip
    assert [op for op in ops if f"`{op}`" not in LANGUAGE] == []


def _table(heading: str) -> dict[str, str]:
    section = LANGUAGE.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([^|]+?) \| `([^`]+)`", section, re.M)
    return {k.strip(): v for k, v in rows}


def test_language_md_defaults_match_the_compiler():
    table = _table("## 7. Defaults")
    assert table == {
        "distill temperature": f"{stages.DEFAULT_TEMPERATURE:g}",
        "distill alpha": f"{stages.DEFAULT_ALPHA:g}",
        "distill duration": str(stages.DEFAULT_DISTILL_EPOCHS),
        "prune granularity": "channels",
        "prune criterion": stages.CRITERIA[0],
        "prune ranking, `weights`": "global",
        "prune ranking, `channels` and N:M": "local",
        "gradual start": "0%",
        "gradual update period": "1",
        "gradual curve": stages.DEFAULT_CURVE,
        "quantize mode": "static",
        "quantize granularity": "per_channel",
        "calibrate batches": str(stages.DEFAULT_CALIBRATION_BATCHES),
        "label_smoothing": "0",
        "subject": "student",
    }
    # ... and they are what the compiler fills in.
    plan = compile_source(
        'model teacher = convnet(width=32) from "t.pt"\ndistill from teacher\n'
        "then prune 50% with lr 0.1 for 1 epoch\nthen quantize int8"
    ).plan
    assert plan is not None
    distill, cut, _, _, prepare, calibrate, _ = plan.passes
    assert distill.params.distill.temperature == stages.DEFAULT_TEMPERATURE == 4
    assert distill.params.distill.alpha == stages.DEFAULT_ALPHA == 0.9
    assert distill.params.epochs == stages.DEFAULT_DISTILL_EPOCHS == 3
    assert (cut.op, cut.params.criterion, cut.params.ranking) == (
        "prune.channels",
        "l1",
        "local",
    )
    assert (prepare.params.mode, prepare.params.granularity) == ("static", "per_channel")
    assert calibrate.params.batches == stages.DEFAULT_CALIBRATION_BATCHES == 32
    assert distill.subject == "student"
    gradual = compile_source("prune 50% weights gradually over 2 epochs").plan
    assert gradual is not None
    schedule = gradual.passes[0].params.schedule
    assert (schedule.start, schedule.every_steps, schedule.every_epochs) == (0.0, None, None)
    assert schedule.period(steps_per_epoch=7) == 7  # once per epoch
    assert schedule.curve == stages.DEFAULT_CURVE
    assert gradual.passes[0].params.cut.ranking == "global"


def _shown(value: object) -> str:
    if isinstance(value, dict):
        args = ", ".join(f"{k}={v}" for k, v in value.items() if k != "name")
        return f"{value['name']}({args})" if args else str(value["name"])
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def test_language_md_settings_defaults():
    section = LANGUAGE.split("## 3. Settings", 1)[1].split("\n## ", 1)[0]
    section = section.split("**Schedules.**", 1)[0]  # the settings table, not the schedules'
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", section, re.M))
    assert set(rows) == set(DEFAULT_SETTINGS)
    for key, value in DEFAULT_SETTINGS.items():
        shown = "none" if value is None else f"`{_shown(value)}`"
        assert rows[key].startswith(shown), (key, rows[key], shown)


KDR_BLOCKS = re.findall(r"```kdr\n(.*?)```", LANGUAGE, re.S)


def test_language_md_schedules_table_matches_the_compiler():
    section = LANGUAGE.split("**Schedules.**", 1)[1].split("**Warmup.**", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)(?:\(([^)]*)\))?` \|", section, re.M))
    assert set(rows) == set(SCHEDULE_ARGS)
    for name, args in rows.items():
        assert tuple(a.strip() for a in args.split(",") if a.strip()) == SCHEDULE_ARGS[name]
        # every default the compiler fills in is written in the row
        row = next(line for line in section.splitlines() if line.startswith(f"| `{name}"))
        for key, value in SCHEDULE_DEFAULTS.get(name, {}).items():
            assert f"`{key}={value:g}`" in row, (name, key)
        for key in REQUIRED_ARGS.get(name, ()):
            assert f"`{key}" in row and "required" in row, (name, key)


def test_language_md_has_examples():
    assert len(KDR_BLOCKS) >= 2


@pytest.mark.parametrize("block", KDR_BLOCKS, ids=[f"block{i}" for i in range(len(KDR_BLOCKS))])
def test_language_md_examples_compile(block):
    result = compile_source(block, "docs.kdr")
    assert [d.code for d in result.diagnostics if d.is_error] == []
    assert result.plan is not None
