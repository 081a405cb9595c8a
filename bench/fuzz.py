"""Fuzzing campaign for kdr's front end: mutated and generated recipes through the full check path.

    python bench/fuzz.py [--count N] [--seconds S] [--seed K] [--out DIR] [--no-probes]

Every input goes through what ``kdr check`` / ``kdr compile`` / ``kdr fmt`` do, in process:

1. ``compiler.driver.compile_source(text, "fuzz.kdr", overrides)`` (parse, every check, plan),
   then the diagnostics are rendered as text and as JSON;
2. on a clean parse, ``format_recipe``: its output must parse, keep every comment and be a
   fixed point (``fmt(parse(fmt(x))) == fmt(x)``); when ``x`` compiles to a plan, ``fmt(x)``
   must compile to the same plan (up to spans and the source hash);
3. on a plan: ``Plan.from_json(plan.to_json()) == plan`` and the stored hash is the content's.

A **finding** is an exception escaping any of these (``compile_source`` is designed never to
raise), a ``KDR999`` diagnostic, a broken fmt or plan property, or one input taking longer
than ``--hang-ms`` (default 1000 ms; a ``setitimer`` alarm interrupts real hangs, and a slow
input is re-run once so that a loaded machine does not report noise).

Inputs come from the corpus (``recipes/*.kdr``, ``tests/fixtures/identity/*.txt`` split on
``%%`` lines, ``tests/fixtures/syntax/*.kdr``, ``tests/fixtures/rules/*.kdr``) and from a small
grammar-based generator; mutators flip characters and bytes, delete, duplicate and swap tokens,
splice two recipes, insert keywords, numbers, percentages, strings, unicode and huge numbers,
nest ``repeat`` blocks and calls deeply, make names very long and add random ``--set``
overrides. Generated ``repeat`` counts are kept small (the compiler unrolls them); a few
fixed *probes* (``repeat 1000000 { evaluate }`` and friends) test the unrolling cap on purpose.

Writes ``DIR/fuzz.json`` (default ``bench/results/``) and each finding's input to
``DIR/fuzz_findings/NNN.kdr`` (one per distinct finding signature, overrides in fuzz.json).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from compiler.driver import compile_source  # noqa: E402
from compiler.plan import Plan  # noqa: E402
from recipe_lang.diagnostics import render_all, to_json  # noqa: E402
from recipe_lang.grammar import KEYWORDS as GRAMMAR_KEYWORDS  # noqa: E402
from recipe_lang.parser import parse  # noqa: E402
from recipe_lang.printer import format_recipe  # noqa: E402

FILE = "fuzz.kdr"
MAX_SAVED = 200

# ---- corpus ---------------------------------------------------------------------------------


def load_corpus(root: Path = ROOT) -> tuple[list[str], int]:
    """Every seed recipe of the repository and the number of files they came from."""
    texts: list[str] = []
    files = 0
    for path in sorted((root / "recipes").glob("*.kdr")):
        texts.append(path.read_text(encoding="utf-8"))
        files += 1
    for path in sorted((root / "tests" / "fixtures" / "identity").glob("*.txt")):
        files += 1
        for case in re.split(r"\n%%\n", path.read_text(encoding="utf-8")):
            texts += [part.strip("\n") + "\n" for part in case.split("\n==>\n")]
    for sub in ("syntax", "rules"):
        for path in sorted((root / "tests" / "fixtures" / sub).glob("*.kdr")):
            texts.append(path.read_text(encoding="utf-8"))
            files += 1
    return [t for t in texts if t.strip()], files


# ---- tokens ---------------------------------------------------------------------------------

TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|\$?[A-Za-z_][A-Za-z0-9_.]*'
    r"|[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[%KMGkmg]?|\s+|.",
    re.DOTALL,
)


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def _significant(toks: Sequence[str]) -> list[int]:
    return [i for i, t in enumerate(toks) if not t.isspace()]


#: The grammar's reserved words (derived from its terminals, so a new keyword is fuzzed too).
KEYWORDS = sorted(GRAMMAR_KEYWORDS)
WORDS = [
    "recipe",
    "param",
    "set",
    "data",
    "model",
    "from",
    "then",
    "train",
    "finetune",
    "distill",
    "snapshot",
    "as",
    "prune",
    "to",
    "by",
    "in",
    "except",
    "with",
    "replace",
    "quantize",
    "calibrate",
    "evaluate",
    "export",
    "repeat",
    "for",
]
WORDS = [
    "student",
    "teacher",
    "dense",
    "t1",
    "t2",
    "helper",
    "ensemble",
    "convnet",
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "mnist10k",
    "cifar10",
    "imagefolder",
    "epochs",
    "epoch",
    "steps",
    "step",
    "channels",
    "weights",
    "l1",
    "l2",
    "random",
    "taylor",
    "local",
    "global",
    "int8",
    "int4",
    "static",
    "dynamic",
    "qat",
    "per_channel",
    "per_tensor",
    "batches",
    "temperature",
    "alpha",
    "label_smoothing",
    "mixup",
    "cutmix",
    "lr",
    "convs",
    "depthwise_separable",
    "ghost",
    "group",
    "onnx",
    "torchscript",
    "pt2",
    "checkpoint",
    "params",
    "macs",
    "seed",
    "device",
    "optimizer",
    "schedule",
    "precision",
    "run_dir",
    "workers",
    "compile",
    "sgd",
    "adamw",
    "cosine",
    "constant",
    "onecycle",
    "step",
    "multistep",
    "linear",
    "poly",
    "cosine_restarts",
    "milestones",
    "gamma",
    "warmup",
    "warmup_epochs",
    "weight_decay",
    "clip_grad",
    "ema",
    "keep",
    "best",
    "accuracy",
    "loss",
    "val",
    "true",
    "false",
    "none",
]
NUMBERS = [
    "0",
    "1",
    "2",
    "3",
    "-1",
    "+4",
    "0.5",
    ".5",
    "1.",
    "5e-4",
    "1e3",
    "1E-4",
    "1e+2",
    "0.0",
    "-0",
    "1e308",
    "1e309",
    "-1e309",
    "1e-400",
    "4.9e-324",
    "99999999999999999999999999999999",
    "000000000000001",
    "3.14159265358979323846264338327950288",
    "1000000",
    "100000",
    "50",
    "100",
    "2.5M",
    "40K",
    "1G",
    "0K",
    "-3M",
]
PERCENTS = [
    "0%",
    "1%",
    "50%",
    "99%",
    "100%",
    "101%",
    "-5%",
    "99.999%",
    ".5%",
    "1.%",
    "1e3%",
    "0.0000001%",
    "999999999999999%",
]
STRINGS = [
    '""',
    '"x"',
    '"out/s.pt"',
    '"../../etc/passwd"',
    '"/tmp/abs.onnx"',
    '"pkg.mod:fn"',
    '":"',
    '"a:b:c"',
    '"\\n\\t\\\\"',
    '"\\q"',
    '"é中文🙂"',
    '"\\"',
    '"unterminated',
    '"' + "s" * 3000 + '"',
    '"#not a comment"',
    '"{ }"',
]
UNICODE = [
    "é",
    "ñ",
    "中",
    "🙂",
    "\u200b",
    "\u2028",
    "\u00a0",
    "\ufeff",
    "\x00",
    "\x0c",
    "\r",
    "\t",
    "\u0301",
    "ﬁ",
    "İ",
    "ß",
    "Ω",
    "\u202e",
    "\U0001f600",
    "ℌ",
    "１",
]
PUNCT = [*'{}()[],=$%"#.:*?+-', "\n", " ", "\\"]
OVERRIDE_VALUES = [
    "1",
    "0",
    "-1",
    "3",
    "2.5",
    "1e309",
    "1e-400",
    "50%",
    "0%",
    '"x"',
    '"unterminated',
    "sgd(lr=0.1)",
    "sgd(lr=0.1",
    "resnet18()",
    "$epochs",
    "$x",
    "name",
    "a.b.c",
    "",
    " ",
    "1 2",
    "=",
    "==",
    "\x00",
    "é",
    "then",
    "repeat",
    "{",
    "99999999999999999999999",
    "2.5M",
]

# ---- a small grammar-based generator ---------------------------------------------------------


STAGE_KINDS = (
    *("train", "train", "distill", "distill", "snapshot", "prune", "prune", "replace"),
    *("quantize", "evaluate", "export", "repeat"),
)


class Generator:
    """Random recipes. *Strict* ones (most) are meant to compile: declared names only, trained
    teachers, values in range, only ``evaluate``/``export`` after ``quantize``. *Loose* ones
    draw from a wider vocabulary (unknown names, out-of-range values, misplaced options)."""

    def __init__(self, rng: random.Random):
        self.r = rng
        self.strict = True
        self.models: list[str] = ["student"]
        self.trained: list[str] = []
        self.frozen: set[str] = set()
        self.snapshots = 0
        self.depth = 0
        self.has_epochs = False
        self.has_val = False

    def pick(self, *options: Any) -> Any:
        return self.r.choice(options)

    def maybe(self, p: float = 0.5) -> bool:
        return self.r.random() < p

    def loose(self, p: float = 0.1) -> bool:
        """Whether to draw a wrong value this time (never in strict mode)."""
        return not self.strict and self.r.random() < p

    def num(self, lo: float, hi: float) -> str:
        if self.loose(0.1):
            return self.r.choice(NUMBERS)
        if self.maybe(0.5) and hi >= 1:
            return str(self.r.randint(max(1, int(lo)), int(hi)))
        return f"{self.r.uniform(lo, hi):.3g}".replace("e-0", "e-")

    def count(self) -> str:
        if self.loose(0.2):
            return self.pick("$epochs", "$n", "0", "-1", "1.5", "2%", "1e3")
        if self.has_epochs and self.maybe(0.2):
            return "$epochs"
        return str(self.r.randint(1, 4))

    def pct(self) -> str:
        if self.loose(0.1):
            return self.r.choice(PERCENTS)
        return f"{self.r.randint(1, 95)}%"

    def subject(self, *, changes: bool = True) -> tuple[str, str]:
        """(text, name) of a stage's subject: often implicit (``student``)."""
        pool = [m for m in self.models if not changes or m not in self.frozen]
        if self.loose(0.3):
            pool += ["teacher", "dense", "helper", "ghost_model"]
        if not pool:
            pool = ["student"]
        name = self.r.choice(pool)
        if name == "student" and self.maybe(0.5):
            return "", name
        return f" {name}", name

    def teacher(self, subject: str) -> str:
        pool = [t for t in self.trained if t != subject]
        if len(pool) >= 2 and self.maybe(0.15):
            pool.append(f"ensemble({', '.join(self.r.sample(pool, 2))})")
        pool += ["resnet50", 'resnet18(weights="DEFAULT")']
        if self.loose(0.5):
            pool += [
                "teacher",
                "dense",
                "ensemble(t1)",
                '"pkg.mod:teacher"(depth=4)',
                "convnet(width=8)",
                subject,
            ]
        return self.r.choice(pool)

    def call(self, name: str) -> str:
        options = [
            f"convnet(width={self.r.randint(1, 64)})",
            f"convnet(width={self.r.randint(1, 8)}, depth={self.r.randint(1, 4)})",
            "resnet18()",
            "mobilenet_v2(width_mult=0.5)",
            '"pkg.mod:build"(k=1)',
            "resnet18(num_classes=10)",
        ]
        if name != "student":
            options.append('torchvision.resnet18(weights="DEFAULT")')
        if self.loose(0.3):
            options += ["unknown_net()", "ensemble(t1, t2)", "convnet(width=1e3)"]
        return self.r.choice(options)

    def data(self) -> str:
        options = [
            "mnist10k(batch_size=128)",
            "mnist10k(limit=64, eval_limit=64)",
            'cifar10(root="~/data")',
            'imagefolder("train", eval="test", val="val", image_size=32)',
            '"pkg.data:load"(size=3)',
            "mnist10k()",
            "mnist10k(val=500)",
            "mnist10k(limit=64, val=16)",
        ]
        if self.loose(0.2):
            options += ["svhn()", "mnist10k(batch_size=0)"]
        choice = self.r.choice(options)
        self.has_val = "val=" in choice
        return choice

    def setting(self) -> str:
        options = [
            f"set seed = {self.r.randint(0, 99)}",
            'set device = "cpu"',
            "set device = auto",
            "set optimizer = sgd(lr=0.05, momentum=0.9, weight_decay=5e-4)",
            "set optimizer = adamw(lr=1e-3)",
            "set schedule = cosine",
            "set schedule = constant",
            "set schedule = multistep(milestones=[1], gamma=0.5)",
            "set schedule = linear(end=0, warmup_steps=2)",
            "set schedule = cosine_restarts(period=1, mult=2)",
            "set schedule = poly(power=2)",
            "set precision = bf16",
            'set run_dir = "runs/x"',
            "set workers = 2",
        ]
        if self.loose(0.3):
            options += [
                "set colour = blue",
                "set compile = maybe",
                "set device = tpu",
                "set schedule = multistep(milestones=[])",
                "set schedule = step(step_size=[1, 2])",
                "set optimizer = adamw(momentum=0.9)",
            ]
        return self.r.choice(options)

    def durations(self) -> str:
        units = ["epochs", "epoch", "steps", "step"]
        if self.loose(0.1):
            units.append("days")
        return f"for {self.count()} {self.r.choice(units)}"

    def modifier(self, subject: str, used: set[str], distill: bool = True) -> str | None:
        kind = self.r.choice(
            (
                *("distill", "label_smoothing", "mixup", "cutmix", "lr", "other"),
                *("optimizer", "schedule", "warmup", "weight_decay", "clip_grad", "ema", "keep"),
            )
        )
        if self.strict and kind == "keep" and not self.has_val:
            return None
        if self.strict and (kind in used or kind == "other" or (kind == "distill" and not distill)):
            return None
        used.add(kind)
        if kind == "distill":
            return f"distill from {self.teacher(subject)}{self.teacher_options()}"
        if kind == "label_smoothing":
            return f"label_smoothing {self.num(0, 0.9)}"
        if kind in ("mixup", "cutmix"):
            return f"{kind} {self.num(0.1, 2)}"
        if kind == "lr":
            return f"lr {self.num(0.001, 0.5)}"
        if kind == "optimizer":
            return self.pick(
                "optimizer sgd(lr=0.01, momentum=0.9)",
                "optimizer adamw",
                "optimizer adamw(lr=1e-3)",
            )
        if kind == "schedule":
            return self.pick(
                "schedule cosine",
                "schedule constant",
                "schedule linear(end=0.1)",
                f"schedule poly(power={self.num(0.5, 3)})",
                "schedule onecycle",
            )
        if kind == "warmup":
            return f"warmup {self.r.randint(1, 3) if self.strict else self.count()} steps"
        if kind == "weight_decay":
            return f"weight_decay {self.num(0, 0.01)}"
        if kind == "clip_grad":
            return f"clip_grad {self.num(0.1, 5)}"
        if kind == "ema":
            return f"ema {self.num(0.5, 0.999)}"
        if kind == "keep":
            return self.pick("keep best", "keep best by loss", "keep best by accuracy")
        return f"{self.pick('dropout', 'temperature')} {self.num(0, 1)}"

    def mods(self, subject: str, distill: bool = True) -> str:
        used: set[str] = set()
        mods = [self.modifier(subject, used, distill) for _ in range(self.r.randint(1, 3))]
        kept = [m for m in mods if m]
        return ", ".join(kept or [f"lr {self.num(0.001, 0.5)}"])

    def teacher_options(self) -> str:
        out = ""
        if self.maybe(0.4):
            out += f" temperature {self.num(0.5, 19)}"
        if self.maybe(0.4):
            out += f" alpha {self.num(0.01, 1)}"
        return out

    def scopes(self) -> str:
        return ", ".join(
            self.pick("layer3.*", "layer4.*", "fc", "0.*", '"features.*"', "*", "stem")
            for _ in range(self.r.randint(1, 2))
        )

    def stage(self) -> str:
        kind = self.r.choice(STAGE_KINDS)
        if kind == "repeat" and self.depth < 3:
            self.depth += 1
            body = self.pipeline(1, 3)
            self.depth -= 1
            n = self.r.randint(0, 4) if self.loose(0.2) else self.r.randint(1, 3)
            return f"repeat {n} {{\n{body}\n}}"
        if kind in ("evaluate", "export"):
            text, _ = self.subject(changes=False)
            if kind == "evaluate":
                return f"evaluate{text}"
            fmts = ["onnx", "torchscript", "pt2", "checkpoint"] + (["tflite"] * self.loose(0.3))
            return f'export{text} {self.r.choice(fmts)} "out/{self.r.randint(0, 9)}.bin"'
        text, name = self.subject()
        if kind == "snapshot":
            self.snapshots += 1
            snap = f"snap{self.snapshots}" if not self.loose(0.3) else self.pick("student", "dense")
            if name in self.trained and snap not in self.models:
                self.models.append(snap)
                self.frozen.add(snap)
                self.trained.append(snap)
            return f"snapshot{text} as {snap}"
        if kind == "distill":
            out = f"distill{text} from {self.teacher(name)}{self.teacher_options()}"
            if self.maybe(0.8):
                out += f" {self.durations()}"
            if self.maybe(0.3):
                out += f" with {self.mods(name, distill=False)}"
            self._trained(name)
            return out
        if kind == "prune":
            budget = self.maybe(0.2)
            if budget:
                unit = self.pick("params", "macs")
                amount = f"to {self.pick('2.5M', '40%', '100K', '0.5M')} {unit}"
            else:
                amount = self.pct()
            out = f"prune{text} {amount}"
            granularity = self.pick("", "", " channels", " weights" if not budget else "")
            out += granularity
            if self.maybe(0.5):
                criteria = ["l1", "l2", "random"] + ["taylor"] * (granularity != " weights")
                out += f" by {self.r.choice(criteria)}"
            out += self.pick("", "", " local", " global")
            if self.loose(0.2):
                out += self.pick(" by foo", " sideways", " channels weights")
            if self.maybe(0.2):
                out += f" in {self.scopes()}"
            if self.maybe(0.2):
                out += f" except {self.scopes()}"
            if self.maybe(0.6):
                out += f" with {self.mods(name)} {self.durations()}"
            return out
        if kind == "replace" and self.strict and "student" in self.frozen:
            return "evaluate"
        if kind == "replace":
            out = "replace convs"
            if self.maybe(0.3):
                out += f" in {self.scopes()}"
            if self.maybe(0.2):
                out += f" except {self.scopes()}"
            reps = ["depthwise_separable", "ghost", f"group({self.r.randint(2, 4)})"]
            if self.loose(0.3):
                reps += ["group(0)", "octave", "group"]
            return f"{out} with {self.r.choice(reps)}"
        if kind == "quantize":
            precision = "int8" if not self.loose(0.3) else self.pick("int4", "fp16", "int8")
            mode = self.pick("", "static", "dynamic", "qat")
            out = f"quantize{text} {precision}" + (f" {mode}" if mode else "")
            out += self.pick("", "", " per_channel", " per_tensor")
            if mode in ("", "static") and self.maybe(0.3):
                out += f" calibrate {self.count()} batches"
            if mode == "qat" or self.loose(0.2):
                out += f" with {self.mods(name)} {self.durations()}"
            if self.strict:
                self.frozen.add(name)
            return out
        verb = self.pick("train", "train", "finetune")
        out = f"{verb}{text} {self.durations()}"
        if self.maybe(0.5):
            out += f" with {self.mods(name)}"
        self._trained(name)
        return out

    def _trained(self, name: str) -> None:
        if name not in self.trained:
            self.trained.append(name)

    def pipeline(self, lo: int, hi: int) -> str:
        return "\nthen ".join(self.stage() for _ in range(self.r.randint(lo, hi)))

    def recipe(self) -> str:
        self.strict = self.r.random() < 0.7
        self.models, self.trained, self.frozen = ["student"], [], set()
        self.has_epochs = False
        self.has_val = False
        lines: list[str] = []
        if self.maybe(0.5):
            lines.append(f'recipe "gen{self.r.randint(0, 999)}"')
        if self.maybe(0.4):
            lines.append(f"param epochs = {self.r.randint(1, 3)}")
            self.has_epochs = True
        if self.maybe(0.2):
            lines.append(f"param n = {self.r.randint(1, 3)}")
        used: set[str] = set()
        for _ in range(self.r.randint(0, 3)):
            line = self.setting()
            key = line.split("=")[0]
            if not self.strict or key not in used:
                used.add(key)
                lines.append(line)
        if self.maybe(0.85):
            lines.append(f"data = {self.data()}")
        for name in ("student", "teacher", "t1", "t2", "helper"):
            if self.maybe(0.5 if name != "student" else 0.8):
                weights = ""
                if self.maybe(0.15):
                    weights = f' from "{name}.pt"'
                    self._trained(name)
                lines.append(f"model {name} = {self.call(name)}{weights}")
                if name not in self.models:
                    self.models.append(name)
        if {"t1", "t2"} <= set(self.models) and self.maybe(0.3):
            lines.append("model ens = ensemble(t1, t2)")
            self.models.append("ens")
            self.frozen.add("ens")
        if self.maybe(0.2):
            self.r.shuffle(lines)
        if self.maybe(0.95):
            lines.append(self.pipeline(1, 6))
        if self.maybe(0.2):
            i = self.r.randint(0, len(lines))
            lines.insert(i, "# a comment " + self.r.choice([*UNICODE[:8], "", "then evaluate"]))
        return "\n".join(lines) + "\n"


# ---- mutators ---------------------------------------------------------------------------------


class Mutator:
    def __init__(self, rng: random.Random, corpus: Sequence[str]):
        self.r = rng
        self.corpus = corpus
        self.ops: list[Callable[[str], str]] = [
            self.char_flip,
            self.char_flip,
            self.byte_flip,
            self.token_delete,
            self.token_delete,
            self.token_duplicate,
            self.token_swap,
            self.splice,
            self.insert_keyword,
            self.insert_keyword,
            self.insert_number,
            self.insert_percent,
            self.insert_string,
            self.insert_unicode,
            self.insert_punct,
            self.replace_number,
            self.replace_number,
            self.replace_name,
            self.deep_nesting,
            self.deep_call,
            self.long_name,
            self.line_shuffle,
            self.truncate,
        ]

    def mutate(self, text: str) -> str:
        for _ in range(self.r.choice((1, 1, 1, 2, 2, 3, 4))):
            text = self.r.choice(self.ops)(text)
        return text

    def _at(self, text: str, insert: str) -> str:
        toks = tokens(text)
        i = self.r.randint(0, len(toks))
        pad = self.r.choice(("", " ", " ", "\n"))
        return "".join(toks[:i]) + pad + insert + pad + "".join(toks[i:])

    def char_flip(self, text: str) -> str:
        if not text:
            return self.r.choice(PUNCT)
        i = self.r.randrange(len(text))
        ch = self.r.choice(PUNCT + UNICODE + [chr(self.r.randint(32, 126))])
        return text[:i] + ch + text[i + 1 :]

    def byte_flip(self, text: str) -> str:
        data = bytearray(text.encode("utf-8"))
        if not data:
            return text
        for _ in range(self.r.randint(1, 3)):
            data[self.r.randrange(len(data))] ^= 1 << self.r.randrange(8)
        return data.decode("utf-8", errors="replace")

    def token_delete(self, text: str) -> str:
        toks = tokens(text)
        sig = _significant(toks)
        if sig:
            del toks[self.r.choice(sig)]
        return "".join(toks)

    def token_duplicate(self, text: str) -> str:
        toks = tokens(text)
        sig = _significant(toks)
        if sig:
            i = self.r.choice(sig)
            toks.insert(i, toks[i] + " ")
        return "".join(toks)

    def token_swap(self, text: str) -> str:
        toks = tokens(text)
        sig = _significant(toks)
        if len(sig) >= 2:
            i, j = self.r.sample(sig, 2)
            toks[i], toks[j] = toks[j], toks[i]
        return "".join(toks)

    def splice(self, text: str) -> str:
        other = self.r.choice(self.corpus)
        if self.r.random() < 0.5:
            a, b = text.splitlines(keepends=True), other.splitlines(keepends=True)
            i, j = self.r.randint(0, len(a)), self.r.randint(0, len(b))
            return "".join(a[:i] + b[j:])
        ta, tb = tokens(text), tokens(other)
        i, j = self.r.randint(0, len(ta)), self.r.randint(0, len(tb))
        return "".join(ta[:i] + tb[j:])

    def insert_keyword(self, text: str) -> str:
        return self._at(text, self.r.choice(KEYWORDS + WORDS))

    def insert_number(self, text: str) -> str:
        return self._at(text, self.r.choice(NUMBERS))

    def insert_percent(self, text: str) -> str:
        return self._at(text, self.r.choice(PERCENTS))

    def insert_string(self, text: str) -> str:
        return self._at(text, self.r.choice(STRINGS))

    def insert_unicode(self, text: str) -> str:
        return self._at(text, "".join(self.r.choices(UNICODE, k=self.r.randint(1, 3))))

    def insert_punct(self, text: str) -> str:
        return self._at(text, "".join(self.r.choices(PUNCT, k=self.r.randint(1, 3))))

    def replace_number(self, text: str) -> str:
        toks = tokens(text)
        nums = [i for i, t in enumerate(toks) if t[:1].isdigit() or t[:1] in "+-."]
        if nums:
            toks[self.r.choice(nums)] = self.r.choice(NUMBERS + PERCENTS + ["$epochs", "$n"])
        return "".join(toks)

    def replace_name(self, text: str) -> str:
        toks = tokens(text)
        names = [i for i, t in enumerate(toks) if t[:1].isalpha() or t[:1] == "_"]
        if names:
            toks[self.r.choice(names)] = self.r.choice(KEYWORDS + WORDS)
        return "".join(toks)

    def deep_nesting(self, text: str) -> str:
        depth = self.r.choice((5, 20, 50, 100, 200, 400, 1000))
        count = self.r.choice(("1", "1", "2"))
        head = f"repeat {count} {{ " * depth
        tail = " }" * (depth - self.r.choice((0, 0, 0, 1)))
        body = self.r.choice(("evaluate", "train for 1 step", "prune 10%"))
        lines = text.splitlines(keepends=True)
        starts = (i for i, ln in enumerate(lines) if re.match(r"\s*(then\b|train|distill)", ln))
        cut = next(starts, 0)
        return "".join(lines[:cut]) + head + body + tail + "\n" + "".join(lines[cut:])

    def deep_call(self, text: str) -> str:
        depth = self.r.choice((5, 50, 200, 600))
        nested = "f(" * depth + "1" + ")" * (depth - self.r.choice((0, 0, 1)))
        return text + f"\nset optimizer = sgd(lr={nested})\n"

    def long_name(self, text: str) -> str:
        toks = tokens(text)
        names = [i for i, t in enumerate(toks) if t[:1].isalpha() or t[:1] == "_"]
        long = "n" * self.r.choice((300, 5000, 50000))
        if names:
            target = toks[self.r.choice(names)]
            uses = sum(t == target for t in toks)
            if uses * len(long) > MAX_INPUT:  # keep inputs < ~200 KB: many copies of one name
                long = long[: max(300, MAX_INPUT // uses)]
            return "".join(long if t == target else t for t in toks)
        return self._at(text, long)

    def line_shuffle(self, text: str) -> str:
        lines = text.splitlines(keepends=True)
        self.r.shuffle(lines)
        return "".join(lines)

    def truncate(self, text: str) -> str:
        return text[: self.r.randint(0, len(text))] if text else text


# ---- keeping generated work bounded ----------------------------------------------------------

MAX_REPEAT = 50
MAX_UNROLL = 200
#: Mutated inputs are cut to this many characters (a recipe is a few hundred).
MAX_INPUT = 200_000


def tame_repeats(text: str) -> str:
    """Cap generated ``repeat`` counts (<= 50, nested product <= 200): the compiler unrolls
    them, and the hang check for large counts is done by the fixed probes instead."""
    if "repeat" not in text:
        return text
    toks = tokens(text)
    stack: list[float] = []
    pending: float | None = None
    for i, t in enumerate(toks):
        if t == "repeat":
            j = i + 1
            while j < len(toks) and (toks[j].isspace() or toks[j].startswith("#")):
                j += 1
            if j < len(toks):
                n = _number(toks[j])
                product = 1.0
                for s in stack:
                    product *= s
                if n is not None and (n > MAX_REPEAT or n * product > MAX_UNROLL):
                    toks[j] = "1"
                    n = 1.0
                pending = n if n is not None else float(MAX_REPEAT)
        elif t == "{":
            stack.append(pending if pending is not None else 1.0)
            pending = None
        elif t == "}" and stack:
            stack.pop()
    return "".join(toks)


def _number(tok: str) -> float | None:
    try:
        return abs(float(tok.rstrip("%KMGkmg")))
    except ValueError:
        return None


#: The unrolling cap on purpose: each must finish (with a diagnostic) in under the hang limit.
PROBES: list[tuple[str, list[str]]] = [
    ("repeat 1000000 { evaluate }\n", []),
    ("repeat 99999999999999999999 { evaluate }\n", []),
    ("repeat 1000 { repeat 1000 { evaluate } }\n", []),
    ("model student = convnet(width=4)\nrepeat 100001 { train for 1 step }\n", []),
    ("param n = 2\nrepeat $n { evaluate }\n", ["n=1000000"]),
    ("repeat 100000 { evaluate }\n", []),
]

# ---- the check --------------------------------------------------------------------------------


class Timeout(BaseException):
    """Raised by the alarm; a BaseException so that kdr's ``except Exception`` cannot eat it."""


def _alarm(signum: int, frame: Any) -> None:
    raise Timeout


def _plan_shape(plan: Plan) -> str:
    body = plan.model_dump(mode="json", exclude={"hash", "source"})
    for p in body["passes"]:
        p.pop("span", None)
    for m in body["models"].values():
        if isinstance(m, dict):
            m.pop("span", None)
    return json.dumps(body, sort_keys=True)


def _difference(a: Any, b: Any, path: str = "plan") -> str:
    """Where two plain structures first differ, e.g. ``plan.models.student.kwargs.width``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _difference(a.get(key), b.get(key), f"{path}.{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _difference(x, y, f"{path}[{i}]")
    return f"{path}: {a!r} became {b!r}"


@dataclass
class Outcome:
    ms: float
    timed_out: bool = False
    problems: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail)
    codes: list[str] = field(default_factory=list)
    planned: bool = False


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "/site-packages/" not in f.filename] or frames
    last = own[-1] if own else None
    place = f"{Path(last.filename).name}:{last.lineno}" if last else "?"
    return f"{type(exc).__name__} at {place}: {str(exc)[:200]}"


def check_input(text: str, overrides: Sequence[str] = (), limit_s: float = 1.0) -> Outcome:
    """Run one input through the whole check path; return what went wrong, if anything."""
    out = Outcome(ms=0.0)
    step = "compile"
    use_alarm = limit_s > 0 and hasattr(signal, "setitimer")
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, limit_s)
    t0 = time.perf_counter()
    try:
        result = compile_source(text, FILE, list(overrides))
        out.codes = [d.code for d in result.diagnostics]
        for d in result.diagnostics:
            if d.code == "KDR999":
                notes = "; ".join(n.message for n in d.notes if n.kind == "note")
                out.problems.append(("kdr999", f"{d.message}: {notes}"[:300]))
        step = "render"
        render_all(result.diagnostics, {FILE: text})
        to_json(result.diagnostics)
        if result.recipe is not None:
            step = "fmt"
            _check_fmt(text, result, overrides, out)
        if result.plan is not None:
            step = "plan"
            out.planned = True
            plan = result.plan
            back = Plan.from_json(plan.to_json())
            if back != plan:
                where = _difference(plan.model_dump(), back.model_dump())
                out.problems.append(("plan-roundtrip", f"Plan.from_json(plan.to_json()): {where}"))
            if plan.compute_hash() != plan.hash:
                out.problems.append(("plan-hash", "plan.hash is not the hash of its content"))
    except Timeout:
        out.timed_out = True
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        out.problems.append((f"crash-{step}", _where(exc)))
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    out.ms = (time.perf_counter() - t0) * 1000
    return out


def _check_fmt(text: str, result: Any, overrides: Sequence[str], out: Outcome) -> None:
    parsed = parse(text, FILE)
    if not parsed.ok or parsed.recipe is None:
        return
    once = format_recipe(parsed.recipe)
    again = parse(once, FILE)
    if not again.ok or again.recipe is None:
        codes = ",".join(d.code for d in again.diagnostics)
        out.problems.append(("fmt-unparseable", f"fmt output does not parse ({codes})"))
        return
    if format_recipe(again.recipe) != once:
        out.problems.append(("fmt-not-idempotent", "fmt(parse(fmt(x))) != fmt(x)"))
    # Every comment's text survives, in order. (The end-of-line comments of a statement written
    # over several lines are all printed after it, joined on one line: that merges them.)
    before = " ".join(c.text for c in parsed.recipe.comments)
    after = " ".join(c.text for c in again.recipe.comments)
    if before != after:
        out.problems.append(("fmt-comments", "fmt loses or reorders comment text"))
    if result.plan is not None:
        reformatted = compile_source(once, FILE, list(overrides))
        if reformatted.plan is None or _plan_shape(reformatted.plan) != _plan_shape(result.plan):
            out.problems.append(("fmt-changes-plan", "compile(fmt(x)) plans differently"))


# ---- the campaign -----------------------------------------------------------------------------


@dataclass
class Finding:
    kind: str
    detail: str
    text: str
    overrides: list[str]
    ms: float
    count: int = 1
    file: str | None = None


@dataclass
class Campaign:
    seed: int = 0
    count: int = 100_000
    seconds: float | None = None
    hang_ms: float = 1000.0
    probes: bool = True
    progress: bool = False
    inputs: int = 0
    elapsed: float = 0.0
    slowest_ms: float = 0.0
    slowest_input: str = ""
    planned: int = 0
    parsed_clean: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    findings: dict[tuple[str, str], Finding] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=lambda: {"crash": 0, "hang": 0, "kdr999": 0})
    corpus_files: int = 0

    def record(self, text: str, overrides: list[str], outcome: Outcome) -> None:
        self.inputs += 1
        if outcome.planned:
            self.planned += 1
        for code in set(outcome.codes):
            self.codes[code] = self.codes.get(code, 0) + 1
        if outcome.ms > self.slowest_ms:
            self.slowest_ms, self.slowest_input = outcome.ms, text[:200]
        problems = list(outcome.problems)
        if outcome.timed_out or outcome.ms > self.hang_ms:
            # Confirm: a loaded machine can stall one input; a real hang is slow twice.
            retry = check_input(text, overrides, self.hang_ms / 1000)
            if retry.timed_out or retry.ms > self.hang_ms:
                what = "interrupted" if retry.timed_out else f"{retry.ms:.0f} ms"
                problems.append(("hang", f"over {self.hang_ms:.0f} ms ({what})"))
        for kind, detail in problems:
            bucket = "crash" if kind.startswith("crash") else kind
            if bucket in self.totals:
                self.totals[bucket] += 1
            key = (kind, _signature(kind, detail, text))
            if key in self.findings:
                self.findings[key].count += 1
            else:
                self.findings[key] = Finding(kind, detail, text, list(overrides), outcome.ms)

    def run(self, corpus: Sequence[str]) -> None:
        rng = random.Random(self.seed)
        gen = Generator(rng)
        mut = Mutator(rng, corpus)
        started = time.perf_counter()
        deadline = started + self.seconds if self.seconds else None
        if self.probes:
            for text, overrides in PROBES:
                self.sources["probe"] = self.sources.get("probe", 0) + 1
                self.record(text, overrides, check_input(text, overrides, self.hang_ms / 1000))
        for i in range(self.count - (len(PROBES) if self.probes else 0)):
            if deadline is not None and time.perf_counter() > deadline:
                break
            text, source = self._input(rng, gen, mut, corpus)
            overrides = _overrides(rng, text) if rng.random() < 0.15 else []
            self.sources[source] = self.sources.get(source, 0) + 1
            self.record(text, overrides, check_input(text, overrides, self.hang_ms / 1000))
            if self.progress and (i + 1) % 5000 == 0:
                rate = self.inputs / (time.perf_counter() - started)
                print(
                    f"  {self.inputs} inputs, {rate:.0f}/s, {len(self.findings)} findings",
                    file=sys.stderr,
                    flush=True,
                )
        self.elapsed = time.perf_counter() - started

    @staticmethod
    def _input(
        rng: random.Random, gen: Generator, mut: Mutator, corpus: Sequence[str]
    ) -> tuple[str, str]:
        roll = rng.random()
        if roll < 0.05:
            return rng.choice(corpus), "corpus"
        if roll < 0.3:
            return tame_repeats(gen.recipe()), "generated"
        if roll < 0.55:
            text, source = mut.mutate(gen.recipe()), "generated+mutated"
        else:
            text, source = mut.mutate(rng.choice(corpus)), "corpus+mutated"
        return tame_repeats(text[:MAX_INPUT]), source

    def report(self, out_dir: Path | None) -> dict[str, Any]:
        findings = sorted(self.findings.values(), key=lambda f: (f.kind, f.detail))
        if out_dir is not None:
            folder = out_dir / "fuzz_findings"
            if folder.exists():
                for old in folder.glob("*.kdr"):
                    old.unlink()
            if findings:
                folder.mkdir(parents=True, exist_ok=True)
            for n, f in enumerate(findings[:MAX_SAVED]):
                path = folder / f"{n:03d}.kdr"
                path.write_text(f.text, encoding="utf-8")
                f.file = str(path.relative_to(out_dir))
        data = {
            "inputs": self.inputs,
            "seconds": round(self.elapsed, 2),
            "inputs_per_s": round(self.inputs / self.elapsed, 1) if self.elapsed else None,
            "seed": self.seed,
            "hang_ms": self.hang_ms,
            "corpus_files": self.corpus_files,
            "findings": [
                {
                    "kind": f.kind,
                    "detail": f.detail,
                    "count": f.count,
                    "ms": round(f.ms, 1),
                    "overrides": f.overrides,
                    "file": f.file,
                    "input": f.text[:500],
                }
                for f in findings
            ],
            "crashes": self.totals["crash"],
            "hangs": self.totals["hang"],
            "kdr999": self.totals["kdr999"],
            "other_findings": sum(
                f.count
                for f in findings
                if f.kind not in ("hang", "kdr999") and not f.kind.startswith("crash")
            ),
            "slowest_ms": round(self.slowest_ms, 1),
            "slowest_input": self.slowest_input,
            "planned": self.planned,
            "sources": dict(sorted(self.sources.items())),
            "diagnostic_codes": dict(sorted(self.codes.items())),
            "python": sys.version.split()[0],
        }
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "fuzz.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return data


def _signature(kind: str, detail: str, text: str) -> str:
    if kind == "hang":
        # One finding per shape of slow input, not per input.
        shape = re.sub(r"\d+", "N", " ".join(text.split())[:60])
        return shape
    if kind == "plan-roundtrip":  # one finding per kind of value lost, not per field
        return detail.rsplit(": ", 1)[-1]
    return re.sub(r"0x[0-9a-f]+", "0x?", detail)


def _overrides(rng: random.Random, text: str) -> list[str]:
    params = re.findall(r"\bparam\s+([A-Za-z_]\w*)", text) or ["epochs"]
    repeated = set(re.findall(r"repeat\s+\$([A-Za-z_]\w*)", text))
    out = []
    for _ in range(rng.randint(1, 3)):
        name = rng.choice([*params, *params, "nope", "", "a b", "$x"])
        value = rng.choice(OVERRIDE_VALUES)
        if name in repeated:
            value = rng.choice(("1", "2", "0", "-1", "x", "1.5"))
        out.append(rng.choice((f"{name}={value}", f"{name}={value}", name, f"{name}= {value}")))
    return out


def summary(data: dict[str, Any]) -> str:
    lines = [
        f"fuzz: {data['inputs']} inputs in {data['seconds']} s ({data['inputs_per_s']}/s), "
        f"{data['planned']} compiled to a plan",
        f"  findings: {len(data['findings'])} distinct; crashes {data['crashes']}, "
        f"hangs {data['hangs']}, KDR999 {data['kdr999']}, other {data['other_findings']}",
        f"  slowest input: {data['slowest_ms']} ms",
    ]
    for f in data["findings"]:
        lines.append(f"  - [{f['kind']}] x{f['count']} {f['detail'][:120]} ({f['file']})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=None, help="time budget (stops early)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--hang-ms", type=float, default=1000.0)
    ap.add_argument("--no-probes", action="store_true", help="skip the huge-repeat probes")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    corpus, files = load_corpus()
    campaign = Campaign(
        seed=args.seed,
        count=args.count,
        seconds=args.seconds,
        hang_ms=args.hang_ms,
        probes=not args.no_probes,
        progress=not args.quiet,
        corpus_files=files,
    )
    campaign.run(corpus)
    data = campaign.report(args.out)
    print(summary(data))
    return 1 if data["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
