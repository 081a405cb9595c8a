"""Generates ``docs/rules.md`` (the rule catalogue) from the code catalogue.

The catalogue is assembled by ``compiler/catalogue.py``: syntax codes from
``recipe_lang/codes.py``, each rule's entry from its module in ``compiler/rules/``, the value and
model-aware codes from ``compiler/catalogue.py`` itself.

    python docs/gen_docs.py            # rewrite docs/rules.md
    python docs/gen_docs.py --check    # exit 1 if docs/rules.md is out of date

``LIMITS`` is the table of KDR102 ranges; each row carries a value just outside its range and
one just inside, and ``tests/compiler/test_docs.py`` compiles both, so the table cannot drift
from what the compiler accepts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from compiler.catalogue import CATALOGUE  # noqa: E402
from recipe_lang.codes import EXAMPLE_HEAD, EXAMPLE_TRAINED  # noqa: E402

RULES_MD = ROOT / "docs" / "rules.md"
_H = EXAMPLE_HEAD
_T = EXAMPLE_TRAINED


class Limit(NamedTuple):
    option: str
    allowed: str
    #: A recipe with ``{}`` where the value goes.
    template: str
    outside: str
    inside: str


LIMITS: tuple[Limit, ...] = (
    Limit(
        "`prune P%`",
        "0% < P < 100%",
        _T + "then prune {} with distill from teacher for 1 epoch",
        "100%",
        "99%",
    ),
    Limit(
        "`prune to N%` budget",
        "0% < N < 100%",
        _T + "then prune to {} params with distill from teacher for 1 epoch",
        "0%",
        "40%",
    ),
    Limit(
        "`prune to N` budget",
        "N >= 1",
        _T + "then prune to {} params with distill from teacher for 1 epoch",
        "0",
        "2.5M",
    ),
    Limit(
        "`prune N:M`",
        "0 < N < M",
        _T + "then prune {} weights with distill from teacher for 1 epoch",
        "4:4",
        "2:4",
    ),
    Limit(
        "`gradually ... from X%`",
        "0% <= X < 100%, below the target",
        _T + "then prune 50% channels gradually over 3 epochs from {} with distill from teacher",
        "50%",
        "0%",
    ),
    Limit(
        "`gradually ... every K steps\\|epochs`",
        "whole K >= 1",
        _T + "then prune 50% channels gradually over 3 epochs every {} steps "
        "with distill from teacher",
        "0",
        "1",
    ),
    Limit(
        "`temperature`",
        "> 0",
        _T + "then distill from teacher temperature {} for 1 epoch",
        "0",
        "0.5",
    ),
    Limit(
        "`alpha`",
        "0 <= alpha <= 1",
        _T + "then distill from teacher alpha {} for 1 epoch",
        "1.5",
        "1",
    ),
    Limit(
        "`for N epochs` / `for N steps`",
        "whole N >= 1",
        _H + "train student for {} epochs",
        "0",
        "1",
    ),
    Limit(
        "`label_smoothing`",
        "0 <= x < 1",
        _H + "train student for 1 epoch with label_smoothing {}",
        "1",
        "0.99",
    ),
    Limit(
        "`mixup`",
        "> 0 (Beta parameter)",
        _H + "train student for 1 epoch with mixup {}",
        "0",
        "0.1",
    ),
    Limit(
        "`cutmix`",
        "> 0 (Beta parameter)",
        _H + "train student for 1 epoch with cutmix {}",
        "0",
        "1.0",
    ),
    Limit("`lr` (modifier)", "> 0", _H + "train student for 1 epoch with lr {}", "0", "0.01"),
    Limit(
        "`weight_decay` (modifier)",
        ">= 0",
        _H + "train student for 1 epoch with weight_decay {}",
        "-0.1",
        "0",
    ),
    Limit(
        "`clip_grad`",
        "> 0 (max gradient norm)",
        _H + "train student for 1 epoch with clip_grad {}",
        "0",
        "1.0",
    ),
    Limit(
        "`ema`",
        "0 < decay < 1",
        _H + "train student for 1 epoch with ema {}",
        "1",
        "0.999",
    ),
    Limit(
        "`warmup N epochs\\|steps`",
        "whole N >= 1, shorter than the training",
        _H + "train student for 3 epochs with warmup {} epochs",
        "0",
        "2",
    ),
    Limit(
        "`calibrate N batches`",
        "whole N >= 1",
        _H + "quantize student int8 calibrate {} batches",
        "0",
        "1",
    ),
    Limit(
        "`repeat N`",
        "whole N >= 1",
        _T + "then repeat {} {{ prune 10% then distill from teacher for 1 epoch }}",
        "0",
        "1",
    ),
    Limit(
        "`replace ... with group(G)`",
        "whole G >= 2",
        _T + "then replace convs with group({}) then distill from teacher for 1 epoch",
        "1",
        "2",
    ),
    Limit(
        "`set seed`", "whole >= 0", "set seed = {}\n" + _H + "train student for 1 epoch", "-1", "0"
    ),
    Limit(
        "`set workers`",
        "whole >= 0",
        "set workers = {}\n" + _H + "train student for 1 epoch",
        "-1",
        "0",
    ),
    Limit(
        "`sgd(lr=...)`, `adamw(lr=...)`",
        "> 0",
        "set optimizer = sgd(lr={})\n" + _H + "train student for 1 epoch",
        "0",
        "0.1",
    ),
    Limit(
        "`sgd(momentum=...)`",
        "0 <= m < 1",
        "set optimizer = sgd(lr=0.1, momentum={})\n" + _H + "train student for 1 epoch",
        "1",
        "0.9",
    ),
    Limit(
        "`weight_decay`",
        ">= 0",
        "set optimizer = adamw(weight_decay={})\n" + _H + "train student for 1 epoch",
        "-1",
        "0",
    ),
    Limit(
        "`adamw(beta1=..., beta2=...)`",
        "0 <= b < 1",
        "set optimizer = adamw(beta1={})\n" + _H + "train student for 1 epoch",
        "1",
        "0.9",
    ),
    Limit(
        "`step(gamma=...)`",
        "0 < gamma <= 1",
        "set schedule = step(gamma={})\n" + _H + "train student for 1 epoch",
        "0",
        "0.5",
    ),
    Limit(
        "`step(step_size=...)`",
        "whole >= 1",
        "set schedule = step(step_size={})\n" + _H + "train student for 1 epoch",
        "0",
        "2",
    ),
    Limit(
        "`multistep(milestones=[...])`",
        "whole, >= 1, increasing",
        _H + "train student for 9 epochs with schedule multistep(milestones={})",
        "[3, 3]",
        "[3, 6]",
    ),
    Limit(
        "`linear(end=...)`",
        "0 <= end < 1 (of the peak)",
        _H + "train student for 1 epoch with schedule linear(end={})",
        "1",
        "0",
    ),
    Limit(
        "`poly(power=...)`",
        "> 0",
        _H + "train student for 1 epoch with schedule poly(power={})",
        "0",
        "2",
    ),
    Limit(
        "`cosine_restarts(period=..., mult=...)`",
        "whole >= 1",
        _H + "train student for 9 epochs with schedule cosine_restarts(period={}, mult=2)",
        "0",
        "3",
    ),
    Limit(
        "`warmup_epochs=`, `warmup_steps=` (in `set schedule`)",
        "whole >= 1",
        "set schedule = cosine(warmup_steps={})\n" + _H + "train student for 1 epoch",
        "0",
        "100",
    ),
    Limit(
        "data `val=N`",
        "whole N >= 1 (or a folder for `imagefolder`)",
        "data = mnist10k(val={})\n" + _H + "train student for 1 epoch with keep best",
        "0",
        "1000",
    ),
)


def _block(text: str) -> list[str]:
    return ["```kdr", *text.rstrip("\n").splitlines(), "```"]


def rules_markdown() -> str:
    out = [
        "# Rule catalogue",
        "",
        "<!-- Generated by docs/gen_docs.py from the code catalogue; do not edit by hand. -->",
        "",
        "Every diagnostic kdr can report. Its first line is always",
        "`FILE:LINE:COL: SEVERITY[CODE]: MESSAGE`; `kdr explain CODE` prints the entry below.",
        "Codes marked *model-aware* come from `kdr check --models` or the start of `kdr run`.",
        "",
        "| code | severity | title |",
        "|---|---|---|",
    ]
    for c in CATALOGUE.values():
        aware = " (model-aware)" if c.model_aware else ""
        out.append(f"| [{c.code}](#{c.code.lower()}) | {c.severity} | {c.title}{aware} |")
    for c in CATALOGUE.values():
        out += ["", f"## {c.code}", "", f"**{c.severity}**: {c.title}"]
        if c.model_aware:
            out += ["", "*Model-aware: reported by `kdr check --models` and `kdr run`.*"]
        out += ["", c.explanation]
        if c.code == "KDR102":
            out += [
                "",
                "| option | allowed | rejected example | accepted example |",
                "|---|---|---|---|",
            ]
            for lim in LIMITS:
                out.append(f"| {lim.option} | {lim.allowed} | `{lim.outside}` | `{lim.inside}` |")
        if c.bad.strip():
            out += ["", "Triggers it:", "", *_block(c.bad)]
        if c.fixed.strip() and c.fixed != c.bad:
            out += ["", "Fixed:", "", *_block(c.fixed)]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    text = rules_markdown()
    if argv[1:] == ["--check"]:
        current = RULES_MD.read_text(encoding="utf-8") if RULES_MD.exists() else ""
        if current != text:
            print("docs/rules.md is out of date: run python docs/gen_docs.py", file=sys.stderr)
            return 1
        return 0
    RULES_MD.write_text(text, encoding="utf-8")
    print(f"wrote {RULES_MD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
