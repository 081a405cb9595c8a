"""The diagnostic code catalogue: every code kdr can emit, with its long explanation.

``kdr explain CODE`` prints an entry; the docs' rule catalogue is generated from this table,
and a test runs every ``bad`` example (it must raise exactly that code) and every ``fixed``
example (it must not). Numbers are never reused.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CodeInfo:
    code: str
    severity: str
    title: str
    explanation: str
    bad: str
    fixed: str
    #: Raised only by model-aware checks (``kdr check --models`` / ``kdr run``).
    model_aware: bool = False


def _entry(
    code: str,
    severity: str,
    title: str,
    explanation: str,
    bad: str,
    fixed: str,
    model_aware: bool = False,
) -> CodeInfo:
    return CodeInfo(
        code,
        severity,
        title,
        explanation.strip(),
        bad.strip() + "\n",
        fixed.strip() + "\n",
        model_aware,
    )


_HEAD = "model teacher = convnet(width=32)\nmodel student = convnet(width=16)\n"

CATALOGUE: dict[str, CodeInfo] = {
    c.code: c
    for c in [
        _entry(
            "KDR001",
            "error",
            "syntax error",
            """
The text does not follow the recipe grammar: an unexpected token or character, an unterminated
string, a missing `then` between stages, a training stage without a duration, or a keyword used
as a name. The message names what was expected in words; fix the text at the caret.
""",
            _HEAD + "train teacher for 3 epochs\ndistill student from teacher for 3 epochs",
            _HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs",
        ),
        _entry(
            "KDR100",
            "error",
            "unknown name",
            """
A name that is not declared and cannot be bound: a model, a `$param`, a `set` key, an option
value or a constructor. kdr suggests the closest name in scope. Models named `student` and the
data may be left undeclared (they are bound at run time with `--student` / `--data`); a bare
name used as a teacher is taken to be a model-zoo constructor such as `resnet50`.
""",
            _HEAD + "train teacher for $epochs epochs",
            "param epochs = 3\n" + _HEAD + "train teacher for $epochs epochs",
        ),
        _entry(
            "KDR101",
            "error",
            "duplicate declaration",
            """
A model, param, data or snapshot name is declared twice, or an option or setting is given
twice. Each name must be declared once; rename one of them.
""",
            _HEAD + "model student = convnet(width=8)\ntrain student for 1 epoch",
            _HEAD + "model tiny = convnet(width=8)\ntrain student for 1 epoch",
        ),
        _entry(
            "KDR102",
            "error",
            "value out of range",
            """
A value outside its allowed range: prune 0% or >= 100%, temperature <= 0, alpha outside [0, 1],
epochs or steps <= 0, label_smoothing outside [0, 1), mixup/cutmix <= 0, calibrate <= 0,
repeat < 1, a learning rate <= 0. The rule catalogue lists every limit.
""",
            _HEAD + "train student for 3 epochs then prune student 100% channels",
            _HEAD + "train student for 3 epochs\n"
            "then prune student 50% channels with lr 0.01 for 1 epoch",
        ),
        _entry(
            "KDR103",
            "error",
            "unknown or misplaced option",
            """
An option word that the stage does not know (`prune by foo`, `quantize int3`), or one that does
not fit where it is (`calibrate` on `qat`, two granularities in one stage). The message lists
the accepted words and suggests the closest.
""",
            _HEAD + "train student for 3 epochs then prune student 50% chanels",
            _HEAD + "train student for 3 epochs\n"
            "then prune student 50% channels with lr 0.01 for 1 epoch",
        ),
        _entry(
            "KDR104",
            "error",
            "wrong kind of value",
            """
A value of the wrong kind: a string where a number is needed, a count where a percentage is
needed (`prune 50` instead of `prune 50%`), a fraction of an epoch, or a duration unit other than
epochs or steps.
""",
            _HEAD + "train student for 3 epochs then prune student 50 channels",
            _HEAD + "train student for 3 epochs\n"
            "then prune student 50% channels with lr 0.01 for 1 epoch",
        ),
        _entry(
            "KDR105",
            "error",
            "bad --set override",
            """
`--set NAME=VALUE` names no `param` of the recipe, or its value does not parse as a recipe
value (a number, a percentage, a string, a name or a call). Declare the param first.
""",
            "# kdr check --set epochs=2\n" + _HEAD + "train student for 3 epochs",
            "# kdr check --set epochs=2\nparam epochs = 3\n"
            + _HEAD
            + "train student for $epochs epochs",
        ),
        _entry(
            "KDR200",
            "error",
            "change after int8 conversion",
            """
After `quantize ... int8` converts a model, its weights are int8 and its graph is fixed: it can
no longer be trained, distilled, pruned, replaced or quantized. Only `evaluate` and `export` may
follow. Move the stage before the quantization, or use `quantize int8 qat with ... for N epochs`
to train with quantization in the loop.
""",
            _HEAD + "train student for 3 epochs\nthen quantize student int8\n"
            "then prune student 50% channels",
            _HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs\n"
            "then prune student 50% channels "
            "with distill from teacher for 1 epoch\nthen quantize student int8",
        ),
        _entry(
            "KDR201",
            "error",
            "qat without training",
            """
Quantization-aware training trains with fake-quantized weights and activations before it
converts to int8; it needs a `with ... for N epochs` clause that says how long (and, ideally,
with which teacher).
""",
            _HEAD + "train student for 3 epochs then quantize student int8 qat",
            _HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs\n"
            "then quantize student int8 qat with distill from teacher for 1 epoch",
        ),
        _entry(
            "KDR202",
            "error",
            "training clause on post-training quantization",
            """
`static` and `dynamic` quantization are post-training: they calibrate or convert without
training, so a `with ... for N epochs` clause has nothing to act on. Use `qat` to train with
quantization in the loop.
""",
            _HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs\n"
            "then quantize student int8 static with distill from teacher for 1 epoch",
            _HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs\n"
            "then quantize student int8 qat with distill from teacher for 1 epoch",
        ),
        _entry(
            "KDR203",
            "error",
            "quantized twice",
            """
A model is quantized twice. The first conversion already produced int8 kernels; drop the
second `quantize`.
""",
            _HEAD + "train student for 3 epochs\nthen quantize student int8\n"
            "then quantize student int8",
            _HEAD + "train student for 3 epochs\nthen quantize student int8",
        ),
        _entry(
            "KDR204",
            "error",
            "teacher without trained weights",
            """
A teacher must hold trained weights when it is used: loaded `from` a file, given `weights=...`,
trained earlier in the pipeline, a snapshot of a trained model, or an ensemble of such.
Distilling from randomly initialised weights teaches the student noise.
""",
            _HEAD + "distill student from teacher for 3 epochs",
            _HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs",
        ),
        _entry(
            "KDR205",
            "error",
            "self-distillation without a snapshot",
            """
A model cannot distill from itself while it changes: the teacher would move with the student.
Freeze a copy first with `snapshot M as NAME`, then distill from NAME.
""",
            _HEAD + "train student for 3 epochs then distill student from student for 1 epoch",
            _HEAD + "train student for 3 epochs\nthen snapshot student as dense\n"
            "then distill student from dense for 1 epoch",
        ),
        _entry(
            "KDR206",
            "error",
            "bad ensemble",
            """
`ensemble(a, b, ...)` averages its members' logits; it needs at least two members, each a
declared model.
""",
            _HEAD + "model pair = ensemble(teacher)\ntrain teacher for 1 epoch\n"
            "then distill student from pair for 1 epoch",
            _HEAD + "model other = convnet(width=24)\nmodel pair = ensemble(teacher, other)\n"
            "train teacher for 1 epoch\nthen train other for 1 epoch\n"
            "then distill student from pair for 1 epoch",
        ),
        _entry(
            "KDR207",
            "error",
            "no data",
            """
A stage needs data (training, distillation, calibration, evaluation, taylor importance) and the
recipe declares none and none was bound with `--data`. Declare `data = mnist10k()` or pass
`--data "cifar10(root='~/data')"`.
""",
            "# kdr run (no data declared)\n" + _HEAD + "train student for 1 epoch",
            "data = mnist10k()\n" + _HEAD + "train student for 1 epoch",
            model_aware=True,
        ),
        _entry(
            "KDR300",
            "warning",
            "structural change never recovered",
            """
Pruning and cheap-convolution replacement remove capacity; without training afterwards the
model usually loses accuracy. Add a recovery clause (`with distill from T for N epochs`) or a
training stage before the end of the pipeline or the next export.
""",
            _HEAD + "train student for 3 epochs\nthen prune student 50% channels\n"
            'then export student onnx "s.onnx"',
            _HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs\n"
            "then prune student 50% channels with distill from teacher for 1 epoch\n"
            'then export student onnx "s.onnx"',
        ),
        _entry(
            "KDR301",
            "warning",
            "unstructured pruning gives no speedup",
            """
`prune ... weights` zeroes individual weights: the model compresses better on disk but dense
kernels run at the same speed. Use `channels` for a real speedup.
""",
            _HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs\n"
            "then prune student 50% weights with distill from teacher for 1 epoch",
            _HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs\n"
            "then prune student 50% channels with distill from teacher for 1 epoch",
        ),
        _entry(
            "KDR302",
            "warning",
            "replace after prune",
            """
Replacing convolutions after pruning rebuilds the pruned layers from scratch and wastes the
pruning; replace first, then prune the cheaper model.
""",
            _HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs\n"
            "then prune student 50% channels with distill from teacher for 1 epoch\n"
            "then replace student convs with depthwise_separable\n"
            "then distill student from teacher for 1 epoch",
            _HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs\n"
            "then replace student convs with depthwise_separable\n"
            "then prune student 50% channels with distill from teacher for 1 epoch",
        ),
        _entry(
            "KDR303",
            "warning",
            "consecutive graph stages of one kind",
            """
Two prune (or two replace) stages in a row with no training between them act like one larger
stage; merge them, or train between them (an iterative schedule: `repeat N { prune P% then
distill from T for 1 epoch }`).
""",
            _HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs\n"
            "then prune student 20% channels\n"
            "then prune student 20% channels with distill from teacher for 1 epoch",
            _HEAD + "train teacher for 3 epochs\nthen distill student from teacher for 3 epochs\n"
            "then prune student 36% channels with distill from teacher for 1 epoch",
        ),
        _entry(
            "KDR304",
            "warning",
            "distillation without effect or with an unusual temperature",
            """
With alpha 0 the distillation term has no weight and the stage is plain training; a temperature
above 20 flattens the teacher's distribution so much that it carries little information.
""",
            _HEAD + "train teacher for 3 epochs\n"
            "then distill student from teacher alpha 0 for 3 epochs",
            _HEAD + "train teacher for 3 epochs\n"
            "then distill student from teacher alpha 0.9 for 3 epochs",
        ),
        _entry(
            "KDR400",
            "note",
            "distillation is available",
            """
A training stage runs without distillation while a trained teacher is available. Knowledge
distillation is orthogonal to pruning, quantization and regularization (Park, Yoo, Kwak 2020):
its gain adds to theirs, so use it as the recovery signal, e.g. `with distill from T`.
""",
            _HEAD + "train teacher for 3 epochs\n"
            "then distill student from teacher for 3 epochs\n"
            "then prune student 50% channels with lr 0.01 for 1 epoch",
            _HEAD + "train teacher for 3 epochs\n"
            "then distill student from teacher for 3 epochs\n"
            "then prune student 50% channels with distill from teacher for 1 epoch",
        ),
        _entry(
            "KDR500",
            "error",
            "model cannot be traced",
            """
A graph pass needs a torch.fx trace of the model and tracing failed (data-dependent control
flow, unsupported operations). The message names the module and the operation; scope it out
with `except <module>` or make it a leaf.
""",
            _HEAD + "prune student 50% channels",
            _HEAD + "prune student 50% channels",
            model_aware=True,
        ),
        _entry(
            "KDR501",
            "error",
            "teacher and student outputs differ",
            """
Distillation compares the teacher's and the student's logits class by class, so both must have
the same number of outputs. A zoo teacher with 1000 ImageNet classes must be fine-tuned on the
data first (`finetune teacher for N epochs`).
""",
            _HEAD + "distill student from teacher",
            _HEAD + "distill student from teacher",
            model_aware=True,
        ),
        _entry(
            "KDR502",
            "error",
            "pruning cannot be done",
            """
The pruning ratio or budget would empty a layer, or the budget cannot be met by structured
pruning of this model. Lower the ratio, loosen the budget or scope layers out.
""",
            _HEAD + "prune student to 10 params",
            _HEAD + "prune student to 40% params",
            model_aware=True,
        ),
        _entry(
            "KDR503",
            "error",
            "no quantization engine",
            """
No int8 engine (x86/fbgemm or qnnpack) is available on this machine for the requested
quantization. Run on a machine with one, or drop the `quantize` stage.
""",
            _HEAD + "quantize student int8",
            _HEAD + "quantize student int8",
            model_aware=True,
        ),
        _entry(
            "KDR504",
            "error",
            "cannot build or load a model or data",
            """
A constructor or factory that does not exist or rejects its arguments, weights that cannot be
loaded (missing file, not a state dict, mismatched shapes), or a dataset that cannot be read.
""",
            "model student = convnet(widht=16)\ntrain student for 1 epoch",
            "model student = convnet(width=16)\ntrain student for 1 epoch",
            model_aware=True,
        ),
        _entry(
            "KDR505",
            "error",
            "export failed",
            """
The model could not be written in the requested format: torch.export, TorchScript or the ONNX
exporter rejected it (int8 torch.fx models, for instance, may not export to ONNX). The message
quotes the exporter's reason; try another format (`checkpoint` always works).
""",
            'model student = convnet(width=16)\nexport student onnx "s.onnx"',
            'model student = convnet(width=16)\nexport student checkpoint "s.pt"',
            model_aware=True,
        ),
        _entry(
            "KDR999",
            "error",
            "internal error",
            """
kdr itself failed. This is a bug: please report it with the recipe and the command.
""",
            "",
            "",
            model_aware=True,
        ),
    ]
}


def explain(code: str) -> str | None:
    """The long text of ``code`` for ``kdr explain``, or None if unknown."""
    info = CATALOGUE.get(code.upper())
    if info is None:
        return None
    parts = [f"{info.code} ({info.severity}): {info.title}", "", info.explanation]
    if info.bad.strip():
        parts += ["", "Example that triggers it:", "", _indent(info.bad)]
    if info.fixed.strip() and info.fixed != info.bad:
        parts += ["Fixed:", "", _indent(info.fixed)]
    return "\n".join(parts).rstrip() + "\n"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip("\n").splitlines()) + "\n"
