"""KD loss against the formula by hand; mixup and cutmix label mixing."""

from __future__ import annotations

import math

import pytest
import torch

from runtime.kd import MixedTargets, cross_entropy, cutmix, kd_loss, mix_batch, mixup

S = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
T = torch.tensor([[1.5, 1.0, -0.5], [-1.0, 0.0, 2.0]])
Y = torch.tensor([0, 2])


def _softmax(row: list[float], temp: float) -> list[float]:
    exps = [math.exp(v / temp) for v in row]
    return [e / sum(exps) for e in exps]


def _by_hand(temp: float, alpha: float, smoothing: float = 0.0) -> float:
    kl = ce = 0.0
    for s_row, t_row, y in zip(S.tolist(), T.tolist(), Y.tolist(), strict=True):
        p_s, p_t = _softmax(s_row, temp), _softmax(t_row, temp)
        kl += sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s, strict=True))
        q = _softmax(s_row, 1.0)
        k = len(q)
        target = [smoothing / k + (1 - smoothing) * (i == y) for i in range(k)]
        ce += -sum(t * math.log(qi) for t, qi in zip(target, q, strict=True))
    n = len(Y)
    return alpha * temp * temp * kl / n + (1 - alpha) * ce / n


@pytest.mark.parametrize(
    ("temp", "alpha", "smoothing"), [(4.0, 0.9, 0.0), (2.0, 0.5, 0.1), (1.0, 0.3, 0.0)]
)
def test_kd_loss_matches_formula(temp: float, alpha: float, smoothing: float) -> None:
    got = kd_loss(S, T, Y, temp, alpha, label_smoothing=smoothing).item()
    assert got == pytest.approx(_by_hand(temp, alpha, smoothing), rel=1e-5)


def test_alpha_zero_is_plain_cross_entropy() -> None:
    expected = torch.nn.functional.cross_entropy(S, Y).item()
    assert kd_loss(S, T, Y, 4.0, 0.0).item() == pytest.approx(expected, rel=1e-6)


def test_alpha_one_is_pure_kl_times_t_squared() -> None:
    assert kd_loss(S, T, Y, 3.0, 1.0).item() == pytest.approx(_by_hand(3.0, 1.0), rel=1e-5)
    # Labels play no part at alpha = 1.
    assert kd_loss(S, T, torch.tensor([1, 1]), 3.0, 1.0).item() == pytest.approx(
        _by_hand(3.0, 1.0), rel=1e-5
    )


def test_kd_loss_is_zero_when_student_matches_teacher_at_alpha_one() -> None:
    assert kd_loss(T, T, Y, 4.0, 1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_mixup_mixes_inputs_and_labels() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 1, 4, 4)
    y = torch.arange(6)
    mixed, targets = mixup(x, y, alpha=1.0, lam=0.7)
    assert isinstance(targets, MixedTargets)
    assert targets.lam == 0.7
    assert torch.equal(targets.y_a, y)
    perm = targets.y_b  # labels are the identity, so y_b is the permutation
    assert torch.allclose(mixed, 0.7 * x + 0.3 * x[perm])


def test_mixed_cross_entropy_weighs_both_labels() -> None:
    targets = MixedTargets(torch.tensor([0, 1]), torch.tensor([2, 0]), 0.25)
    f = torch.nn.functional.cross_entropy
    expected = 0.25 * f(S, targets.y_a) + 0.75 * f(S, targets.y_b)
    assert torch.allclose(cross_entropy(S, targets), expected)


def test_cutmix_pastes_a_box_and_corrects_lambda() -> None:
    torch.manual_seed(1)
    x = torch.zeros(4, 1, 8, 8)
    x[:, 0] = torch.arange(4, dtype=torch.float32)[:, None, None]  # each image one constant
    y = torch.arange(4)
    mixed, targets = cutmix(x, y, alpha=1.0, lam=0.5)
    for i in range(4):
        own = (mixed[i] == float(i)).float().mean().item()
        other = (mixed[i] == float(targets.y_b[i])).float().mean().item()
        if targets.y_b[i] != i:
            assert own == pytest.approx(targets.lam)
            assert other == pytest.approx(1 - targets.lam)
    assert 0.0 < targets.lam < 1.0


def test_mix_batch_without_mixing_returns_the_batch() -> None:
    x, y = torch.randn(2, 1, 4, 4), torch.tensor([0, 1])
    out, targets = mix_batch(x, y, None, None)
    assert out is x and targets is y
