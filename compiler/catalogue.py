"""The full code catalogue behind ``kdr explain`` and ``docs/rules.md``, in code order.

Each layer documents what it raises: the syntax codes come from :mod:`recipe_lang.codes`, each
compatibility rule exports its own entry (``compiler.rules.RULES``), and this module holds the
rest: the value and declaration codes the compiler raises while lowering a recipe (KDR100-KDR109,
KDR206-KDR208) and the model-aware codes that ``kdr check --models`` and ``kdr run`` raise
(KDR500-KDR508, KDR999). Torch-free, like all of the compiler.

>>> explain("kdr204").splitlines()[0]
'KDR204 (error): teacher without trained weights'
"""

from __future__ import annotations

from compiler.catalogue_models import MODEL_AWARE_CODES, TINY
from compiler.rules import RULES
from recipe_lang.codes import (
    EXAMPLE_HEAD,
    SYNTAX_CODES,
    CodeInfo,
    code_info,
    describe,
)

#: Codes raised while resolving names and checking values and declarations.
VALUE_CODES: tuple[CodeInfo, ...] = (
    code_info(
        "KDR100",
        "error",
        "unknown name",
        """
A name that is not declared and cannot be bound: a model, a `$param`, a `set` key, an option
value or a constructor. kdr suggests the closest name in scope. Models named `student` and the
data may be left undeclared (they are bound at run time with `--student` / `--data`); a bare
name used as a teacher is taken to be a model-zoo constructor such as `resnet50`.
""",
        EXAMPLE_HEAD + "train teacher for $epochs epochs",
        "param epochs = 3\n" + EXAMPLE_HEAD + "train teacher for $epochs epochs",
    ),
    code_info(
        "KDR101",
        "error",
        "duplicate declaration",
        """
A model, param, data or snapshot name is declared twice, or an option or setting is given
twice. Each name must be declared once; rename one of them.
""",
        EXAMPLE_HEAD + "model student = convnet(width=8)\ntrain student for 1 epoch",
        EXAMPLE_HEAD + "model tiny = convnet(width=8)\ntrain student for 1 epoch",
    ),
    code_info(
        "KDR102",
        "error",
        "value out of range",
        """
A value outside its allowed range: prune 0% or >= 100%, temperature <= 0, alpha outside [0, 1],
epochs or steps <= 0, label_smoothing outside [0, 1), mixup/cutmix <= 0, calibrate <= 0,
repeat < 1, a learning rate <= 0, an N:M pattern without 0 < N < M, a gradual prune whose `from`
is outside [0%, 100%) or not below its target, an optimizer or schedule argument out of its
range (momentum or betas outside [0, 1), gamma outside (0, 1], milestones that do not increase),
`ema` outside (0, 1), `clip_grad` <= 0, `weight_decay` < 0, a `val` split below 1. The rule
catalogue lists every limit.
""",
        EXAMPLE_HEAD + "train student for 3 epochs then prune student 100% channels",
        EXAMPLE_HEAD + "train student for 3 epochs\n"
        "then prune student 50% channels with lr 0.01 for 1 epoch",
    ),
    code_info(
        "KDR103",
        "error",
        "unknown or misplaced option",
        """
An option word that the stage does not know (`prune by foo`, `quantize int3`, a sparsity curve
other than cubic, linear, exponential), or one that does not fit where it is (`calibrate` on
`qat`, two granularities in one stage, `by fpgm` or `by taylor` on `weights`, `by movement`
outside a gradual `weights` prune, an N:M pattern with `channels`, `global` or `gradually`, a
gradual prune with a budget or with a second duration `for N epochs`, a `heads` prune with a
budget, an N:M pattern, `gradually` or a criterion other than l1, l2, random and taylor), an
optimizer or schedule
argument the optimizer or schedule does not take (`adamw(momentum=0.9)`: `momentum` is
`sgd`'s), a modifier that does not exist (`with dropuot 0.1`), `keep` not followed by `best`, or
two warmups for one schedule. The message lists the accepted words and suggests the closest.
""",
        EXAMPLE_HEAD + "train student for 3 epochs then prune student 50% chanels",
        EXAMPLE_HEAD + "train student for 3 epochs\n"
        "then prune student 50% channels with lr 0.01 for 1 epoch",
    ),
    code_info(
        "KDR104",
        "error",
        "wrong kind of value",
        """
A value of the wrong kind: a string where a number is needed, a count where a percentage is
needed (`prune 50` instead of `prune 50%`), a fraction of an epoch, a duration or warmup unit
other than epochs or steps, a modifier written in the wrong form (`warmup 2` without its unit,
`lr fast`), milestones that are not a list, a schedule without the argument it needs
(`multistep` without `milestones`, `cosine_restarts` without `period`), or a `val` split that is
neither a count nor (for `imagefolder`) a folder.
""",
        EXAMPLE_HEAD + "train student for 3 epochs then prune student 50 channels",
        EXAMPLE_HEAD + "train student for 3 epochs\n"
        "then prune student 50% channels with lr 0.01 for 1 epoch",
    ),
    code_info(
        "KDR105",
        "error",
        "bad command-line use",
        """
A command-line flag does not fit the recipe or the run: `--set NAME=VALUE` names no `param` of
the recipe or its value does not parse as a recipe value (declare the param first); `--student`
/ `--data` is not a call, or is given with a compiled plan (bind when compiling); `--resume`
names a run directory that holds a run of a different plan; a run directory holds finished
passes and neither `--resume` (continue) nor `--fresh` (move the old run aside) was given.
""",
        "# kdr check --set epochs=2\n" + EXAMPLE_HEAD + "train student for 3 epochs",
        "# kdr check --set epochs=2\nparam epochs = 3\n"
        + EXAMPLE_HEAD
        + "train student for $epochs epochs",
    ),
    code_info(
        "KDR106",
        "error",
        "gradual schedule does not fit its duration",
        """
A gradual prune updates its sparsity at steps 0, P, 2P, ... of its training (P: `every K steps`
or `every K epochs`, once per epoch by default) and reaches its target at the last update before
the end. With a period as long as the training (`over 100 steps every 100 steps`, `over 1 epoch`
with the default once-per-epoch updates) there is no update after the first: the sparsity jumps
to the target at once and nothing is ramped. Update more often (`every 100 steps`) or train
longer. When the duration and the period are in different units (`over 2 epochs every 300
steps`) the compiler cannot count the updates: `kdr run` and `kdr check --models` check it with
the data's steps per epoch and report this code.
""",
        EXAMPLE_HEAD + "train student for 3 epochs\n"
        "then prune student 50% channels gradually over 1 epoch",
        EXAMPLE_HEAD + "train student for 3 epochs\n"
        "then prune student 50% channels gradually over 1 epoch every 50 steps",
    ),
    code_info(
        "KDR107",
        "error",
        "learning-rate schedule does not fit its training",
        """
A training's own schedule or warmup (`with schedule ...`, `with warmup ...`) has a length that
does not fit inside the training, so it would not do what it says: a warmup as long as the
training (the learning rate never reaches its peak), a multistep milestone at or after the end
(it never decays), a `step_size` or a `cosine_restarts` period as long as the training (it never
steps or restarts). Milestones, step sizes and periods count epochs, or steps when the training's
duration is in steps, from the training's start. Shorten the length or train longer. A warmup in
other units than the training (`warmup 500 steps` on a training `for 2 epochs`) is checked by
`kdr run` and `kdr check --models` with the data's steps per epoch.
""",
        EXAMPLE_HEAD + "train student for 2 epochs with schedule multistep(milestones=[2])",
        EXAMPLE_HEAD + "train student for 2 epochs with schedule multistep(milestones=[1])",
    ),
    code_info(
        "KDR108",
        "warning",
        "the recipe's schedule does not fit a training",
        """
`set schedule` gives every training its schedule (it restarts at each training), and one of
them is too short for it: a milestone, step size, period or warmup of the recipe's schedule does
not fit inside that training (see KDR107), so that part of the schedule has no effect there.
The training still runs. Give the short training its own schedule (`with schedule cosine`) or
make the recipe's lengths fit every training.
""",
        "set schedule = multistep(milestones=[2])\n"
        + EXAMPLE_HEAD
        + "train student for 3 epochs\nthen finetune student for 1 epoch",
        "set schedule = multistep(milestones=[2])\n"
        + EXAMPLE_HEAD
        + "train student for 3 epochs\nthen finetune student for 1 epoch with schedule cosine",
    ),
    code_info(
        "KDR109",
        "warning",
        "ema too slow for its training",
        """
`ema X` makes an exponential moving average of the weights the training's result. The weights
the training started from keep a share of X^N of the average after N steps (X = 0.999 averages
over about 1,000 steps), so on a short training a decay close to 1 leaves the result mostly
untrained. kdr warns when more than a tenth of it would be the starting weights, and suggests the
largest decay that fits. A training counted in epochs is checked by `kdr run` and `kdr check
--models` with the data's steps per epoch.
""",
        EXAMPLE_HEAD + "train student for 100 steps with ema 0.999",
        EXAMPLE_HEAD + "train student for 100 steps with ema 0.95",
    ),
    code_info(
        "KDR206",
        "error",
        "bad ensemble",
        """
`ensemble(a, b, ...)` averages its members' logits; it needs at least two members, each a
declared model.
""",
        EXAMPLE_HEAD + "model pair = ensemble(teacher)\ntrain teacher for 1 epoch\n"
        "then distill student from pair for 1 epoch",
        EXAMPLE_HEAD + "model other = convnet(width=24)\nmodel pair = ensemble(teacher, other)\n"
        "train teacher for 1 epoch\nthen train other for 1 epoch\n"
        "then distill student from pair for 1 epoch",
    ),
    code_info(
        "KDR207",
        "error",
        "no data",
        """
A stage needs data (training, distillation, calibration, evaluation, taylor importance) and the
recipe declares none and none was bound with `--data`. Declare `data = mnist10k()` or pass
`--data "cifar10(root='~/data')"`.
""",
        "# kdr check --models (no data declared, none bound with --data)\n"
        "model student = convnet(width=4)\ntrain student for 1 step",
        TINY + "train student for 1 step",
        model_aware=True,
    ),
)

#: Codes about the data a recipe declares.
DATA_CODES: tuple[CodeInfo, ...] = (
    code_info(
        "KDR208",
        "error",
        "no validation split",
        """
`keep best` keeps the weights of a training's best epoch as measured on a validation split, and
the recipe's data has none. Carve one from the training data with `val=N` (N training images,
chosen with the run's seed, held out; every data source takes it), or for `imagefolder` name a
folder of its own (`eval="test", val="val"`: `eval` names the evaluation folder). The
evaluation split stays what `evaluate` reports.
""",
        "data = mnist10k()\n" + EXAMPLE_HEAD + "train student for 3 epochs with keep best",
        "data = mnist10k(val=1000)\n" + EXAMPLE_HEAD + "train student for 3 epochs with keep best",
    ),
)

#: Every code kdr can emit, in code order.
CATALOGUE: dict[str, CodeInfo] = dict(
    sorted(
        {
            **SYNTAX_CODES,
            **{rule.code: rule.entry for rule in RULES},
            **{c.code: c for c in VALUE_CODES + DATA_CODES + MODEL_AWARE_CODES},
        }.items()
    )
)


def explain(code: str) -> str | None:
    """The long text of ``code`` for ``kdr explain``, or None if unknown."""
    info = CATALOGUE.get(code.upper())
    return describe(info) if info is not None else None


__all__ = ["CATALOGUE", "DATA_CODES", "MODEL_AWARE_CODES", "VALUE_CODES", "explain"]
