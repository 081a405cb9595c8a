"""The model-aware codes (KDR500-KDR508, KDR999): what ``kdr check --models`` and ``kdr run``
raise once models and data are built. Torch-free, like all of the compiler; the examples use
tiny models and data so that a test can check each in seconds (:mod:`compiler.catalogue`).
"""

from __future__ import annotations

from recipe_lang.codes import CodeInfo, code_info

#: The model-aware examples use tiny models and data so that a test can check each in seconds.
DATA = "data = mnist10k(batch_size=8)\n"
TINY = DATA + "model student = convnet(width=4)\n"
#: `gated_net` (tests/fixtures/models/mymodels.py) branches on its input's values in `gate`.
_GATED = (
    "# mymodels.gated_net: its `gate` block branches on the values of its input\n"
    + DATA
    + 'model student = "mymodels:gated_net"()\ntrain student for 1 step\n'
)

#: `root_gated_net` branches on its input's values in its own forward: nothing to keep whole.
_ROOT_GATED = _GATED.replace("gated_net", "root_gated_net").replace("`gate` block", "own forward")

#: Codes raised by the model-aware checks (they build the models, so they need the runtime).
MODEL_AWARE_CODES: tuple[CodeInfo, ...] = (
    code_info(
        "KDR500",
        "error",
        "model cannot be traced",
        """
A graph pass needs a torch.fx trace of the model and tracing failed (data-dependent control
flow, unsupported operations). The message names the module and the operation. Channel pruning
and BatchNorm folding keep an untraceable submodule whole on their own (KDR508), so for them
this error means the model's own `forward` is untraceable: move that part into a submodule.
Quantization traces every op: scope the module out with `except <module>` or rewrite it.
""",
        _ROOT_GATED + "then prune student 50% channels with lr 0.01 for 1 step",
        _GATED + "then prune student 50% channels with lr 0.01 for 1 step",
        model_aware=True,
    ),
    code_info(
        "KDR501",
        "error",
        "model outputs do not fit the data's classes",
        """
Every model gives logits of the data's classes, one per class: training scores them against the
labels, and distillation compares the teacher's and the student's class by class. kdr passes the
data's classes to every constructor (`num_classes`, timm's too; `num_labels` for `hf.` models)
unless the call gives its own, so this comes from a call that gives another number
(`timm.resnet18(num_classes=1000)` on 10 classes) or a factory that ignores `num_classes`.
The forward must also return something kdr can read logits from: a tensor, a dict or Hugging
Face ModelOutput with `logits`, or a tuple whose first item is the logits.
""",
        DATA + "model teacher = convnet(width=4, num_classes=5)\n"
        "model student = convnet(width=4)\n"
        "train teacher for 1 step\nthen distill student from teacher for 1 step",
        DATA + "model teacher = convnet(width=4)\nmodel student = convnet(width=4)\n"
        "train teacher for 1 step\nthen distill student from teacher for 1 step",
        model_aware=True,
    ),
    code_info(
        "KDR502",
        "error",
        "pruning cannot be done",
        """
The pruning ratio or budget would empty a layer, the budget cannot be met by structured
pruning of this model, or nothing in scope can be pruned (no prunable channel group; for
`prune P% heads`, no attention module with more than one head: kdr prunes the heads of
`nn.MultiheadAttention`, timm's `Attention`, Hugging Face BERT/ViT self-attention and
Llama-style grouped-query attention). Lower the ratio, loosen the budget or fix the scopes.
""",
        TINY + "train student for 1 step\nthen prune student to 10 params with lr 0.01 for 1 step",
        TINY + "train student for 1 step\nthen prune student to 40% params with lr 0.01 for 1 step",
        model_aware=True,
    ),
    code_info(
        "KDR503",
        "error",
        "no quantization engine",
        """
No int8 engine (x86/fbgemm or qnnpack) is available on this machine for the requested
quantization. Run on a machine with one, or drop the `quantize` stage.
""",
        "# on a machine whose PyTorch has no int8 engine\n"
        + TINY
        + "train student for 1 step\nthen quantize student int8",
        "# on a machine whose PyTorch has no int8 engine\n" + TINY + "train student for 1 step",
        model_aware=True,
    ),
    code_info(
        "KDR504",
        "error",
        "cannot build or load a model or data",
        """
A constructor or factory that does not exist or rejects its arguments, weights that cannot be
loaded (missing file, not a state dict, mismatched shapes), or a dataset that cannot be read.
""",
        DATA + "model student = convnet(widht=4)\ntrain student for 1 step",
        TINY + "train student for 1 step",
        model_aware=True,
    ),
    code_info(
        "KDR505",
        "error",
        "export failed",
        """
The model could not be written in the requested format: torch.export, TorchScript or the ONNX
exporter rejected it (int8 torch.fx models, for instance, do not export with torch.export). The
message quotes the exporter's reason; try another format (`checkpoint` always works).
""",
        TINY + "train student for 1 step\nthen quantize student int8\n"
        'then export student pt2 "s.pt2"',
        TINY + "train student for 1 step\nthen quantize student int8\n"
        'then export student checkpoint "s.pt"',
        model_aware=True,
    ),
    code_info(
        "KDR506",
        "warning",
        "a prune falls short of its ratio",
        """
`prune P% channels` removes P% of the channels of every channel group in scope that kdr can
follow through every op. A group that passes through an op without a rule, a block kept whole
(KDR508) or a model output is blocked and keeps all its channels; when blocked groups hold most
of the model, the prune removes less than 80% of what was asked. The warning gives the share
removed and the three reasons that block the most channels. The run goes on: the model is
smaller by what was removed. Prune what can be pruned harder, or give a budget (`prune to 40%
params`), which searches the ratio that meets it.
""",
        _GATED + "then prune student 50% channels with lr 0.01 for 1 step",
        _GATED + "then prune student 50% channels in body with lr 0.01 for 1 step",
        model_aware=True,
    ),
    code_info(
        "KDR507",
        "error",
        "model cannot take the data's images",
        """
Every model is run once on a batch of the data before any training, and this one failed. Most
often the images are too small for its downsampling: `convnext_tiny` and `densenet121` divide
the image side by 32, so 28x28 MNIST shrinks to nothing ("Kernel size can't be greater than
actual input size"). kdr retries the model on larger images and says the smallest side that
works: give the data that `image_size` (`mnist10k(image_size=64)`), or pick a model made for
small images (`convnet()`, `resnet18()`).
""",
        DATA + "model student = densenet121()\ntrain student for 1 step",
        "data = mnist10k(batch_size=8, image_size=64)\n"
        "model student = densenet121()\ntrain student for 1 step",
        model_aware=True,
    ),
    code_info(
        "KDR508",
        "note",
        "a block is kept whole",
        """
torch.fx cannot trace a submodule (data-dependent control flow, `len()` of a tensor...), so
channel pruning and BatchNorm folding keep it whole: traced as one opaque call, the channels
flowing in and out of it are not pruned, the rest of the model is. The note names the module,
its type and fx's reason; the prune's report entry lists the same blocks (`kept_whole`).
""",
        _GATED + "then prune student 50% channels with lr 0.01 for 1 step",
        TINY + "train student for 1 step\nthen prune student 50% channels with lr 0.01 for 1 step",
        model_aware=True,
    ),
    code_info(
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
)


__all__ = ["DATA", "MODEL_AWARE_CODES", "TINY"]
