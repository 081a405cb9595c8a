"""The training engine: it learns, it is deterministic, distillation sees the same batch."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from recipe_lang.diagnostics import KdrError
from runtime.data import DataBundle, build_data
from runtime.engine import DistillConfig, TrainConfig, evaluate, fit
from runtime.models import build_model


@pytest.fixture(scope="module")
def small() -> DataBundle:
    return build_data("mnist10k", [], {"limit": 512, "eval_limit": 500, "batch_size": 64}, seed=0)


def _net(width: int = 8) -> nn.Module:
    return build_model("convnet", [], {"width": width}, in_channels=1, num_classes=10)


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def test_one_epoch_beats_chance(small: DataBundle) -> None:
    torch.manual_seed(0)
    model = _net(16)
    before = evaluate(model, small)
    stats = fit(model, small, TrainConfig(epochs=1))
    after = evaluate(model, small)
    assert stats.steps == small.steps_per_epoch == 8
    assert stats.samples == 512 and stats.samples_per_s > 0
    # 8 steps from scratch: well above chance (0.1), far from converged (see the acceptance run)
    assert after > 0.2 and after > before + 0.05
    assert stats.loss_last < stats.loss_first
    assert model.training  # evaluate restores the mode


def test_same_seed_same_weights(small: DataBundle) -> None:
    runs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = _net()
        fit(model, small, TrainConfig(epochs=1, seed=7, mixup=0.5, label_smoothing=0.1))
        runs.append(_weights(model))
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))
    torch.manual_seed(123)
    other = _net()
    fit(other, small, TrainConfig(epochs=1, seed=8))
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], _weights(other), strict=True))


def test_steps_win_over_epochs(small: DataBundle) -> None:
    stats = fit(_net(), small, TrainConfig(epochs=5, steps=3, schedule="cosine"))
    assert stats.steps == 3 and stats.samples == 3 * 64


@pytest.mark.parametrize(
    ("optimizer", "schedule"), [("sgd", "step"), ("adamw", "constant"), ("sgd", "onecycle")]
)
def test_optimizers_and_schedules_run(small: DataBundle, optimizer: str, schedule: str) -> None:
    stats = fit(_net(), small, TrainConfig(steps=4, optimizer=optimizer, schedule=schedule))
    assert stats.steps == 4 and all(v == v for v in stats.loss_curve)  # no NaN


def test_lr_override_and_bad_options(small: DataBundle) -> None:
    stats = fit(_net(), small, TrainConfig(steps=2, schedule="constant", lr=0.123))
    assert stats.lr_final == pytest.approx(0.123)
    for cfg in (
        TrainConfig(steps=1, optimizer="rmsprop"),
        TrainConfig(steps=1, schedule="spline"),
        TrainConfig(steps=1, schedule="step", schedule_kwargs={"gamma": 2.0}),
        TrainConfig(steps=1, schedule="multistep"),  # no milestones
        TrainConfig(steps=1, precision="fp8"),
        TrainConfig(steps=1, optimizer_kwargs={"nonsense": 1}),
    ):
        with pytest.raises(KdrError) as exc:
            fit(_net(), small, cfg)
        assert exc.value.diagnostics[0].code == "KDR103"


class Spy(nn.Module):
    """Records the inputs it sees, its mode and whether inference mode was on."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
        self.seen: list[tuple[torch.Tensor, bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((x.detach().clone(), self.training, torch.is_inference_mode_enabled()))
        return self.net(x)


@pytest.mark.parametrize("mix", [{"mixup": 1.0}, {"cutmix": 1.0}, {"mixup": 0.4, "cutmix": 1.0}])
def test_teacher_sees_the_same_mixed_batch(small: DataBundle, mix: dict[str, float]) -> None:
    student, teacher = Spy(), Spy()
    teacher.train()
    cfg = TrainConfig(steps=3, distill=DistillConfig(teacher), **mix)  # type: ignore[arg-type]
    stats = fit(student, small, cfg)
    assert not stats.teacher_cached
    assert len(teacher.seen) == len(student.seen) == 3
    originals = [x for x, _ in small.train_batches(torch.Generator().manual_seed(0))][:3]
    for (xs, s_training, _), (xt, t_training, t_inference), x0 in zip(
        student.seen, teacher.seen, originals, strict=True
    ):
        assert torch.equal(xs, xt)
        assert not torch.equal(xs, x0)  # it was mixed
        assert s_training and not t_training and t_inference
    assert teacher.training  # the teacher's mode is restored


def test_teacher_logits_are_cached_and_equivalent(small: DataBundle) -> None:
    torch.manual_seed(0)
    teacher = _net(8)
    fit(teacher, small, TrainConfig(steps=4))
    torch.manual_seed(1)
    base = _net(4)
    a, b = copy.deepcopy(base), copy.deepcopy(base)
    sa = fit(a, small, TrainConfig(steps=16, distill=DistillConfig(teacher)))
    sb = fit(b, small, TrainConfig(steps=16, distill=DistillConfig(teacher, cache_logits=False)))
    assert sa.teacher_cached and not sb.teacher_cached
    # under two epochs, a pass over the whole split would cost more than it saves
    assert not fit(
        copy.deepcopy(base), small, TrainConfig(steps=8, distill=DistillConfig(teacher))
    ).teacher_cached
    for wa, wb in zip(_weights(a), _weights(b), strict=True):
        assert torch.allclose(wa.float(), wb.float(), atol=1e-4)


def test_augmented_data_disables_the_cache() -> None:
    data = build_data("mnist10k", [], {"limit": 128, "augment": True, "batch_size": 64}, seed=0)
    stats = fit(_net(4), data, TrainConfig(steps=2, distill=DistillConfig(_net(4))))
    assert not stats.teacher_cached


class Rolled(nn.Module):
    """A teacher that predicts class (c + 1) % 10 where ``base`` predicts c."""

    def __init__(self, base: nn.Module) -> None:
        super().__init__()
        self.base = base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x).roll(1, dims=1)


def test_distillation_follows_the_teacher_not_the_labels() -> None:
    data = build_data("mnist10k", [], {"limit": 512, "eval_limit": 500, "batch_size": 32}, seed=0)
    torch.manual_seed(1)
    base = _net(8)
    fit(base, data, TrainConfig(epochs=2))
    teacher = Rolled(base).eval()
    torch.manual_seed(0)
    student = _net(8)
    x = torch.cat([x for x, _ in data.eval_batches()])

    def agreement() -> float:
        student.eval()
        with torch.no_grad():
            return (student(x).argmax(1) == teacher(x).argmax(1)).float().mean().item()

    before = agreement()
    fit(student, data, TrainConfig(epochs=2, distill=DistillConfig(teacher, alpha=1.0)))
    # With alpha = 1 only the (shifted) soft labels teach: the student agrees with the
    # teacher far more than before, and so scores below chance on the true labels.
    assert agreement() > before + 0.2
    assert evaluate(student, data) < 0.1 < evaluate(base, data)


def test_fx_graph_module_and_qat_prepared_models_train(small: DataBundle) -> None:
    from torch.ao.quantization import get_default_qat_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    graph = torch.fx.symbolic_trace(_net())
    stats = fit(graph, small, TrainConfig(steps=3))
    assert stats.steps == 3
    x = next(small.eval_batches())[0][:4]
    qat = prepare_qat_fx(_net().train(), get_default_qat_qconfig_mapping("x86"), (x,))
    before = _weights(qat)
    fit(qat, small, TrainConfig(steps=3))
    assert any(not torch.equal(a, b) for a, b in zip(before, _weights(qat), strict=True))


def test_bf16_autocast_runs(small: DataBundle) -> None:
    stats = fit(_net(), small, TrainConfig(steps=2, precision="bf16"))
    assert stats.steps == 2 and stats.loss_last == stats.loss_last


def test_progress_prints_nothing_without_a_tty(
    small: DataBundle, capsys: pytest.CaptureFixture[str]
) -> None:
    fit(_net(), small, TrainConfig(steps=2, progress=True))
    assert capsys.readouterr().out == ""
