import pytest
import torch
from opacus.accountants import RDPAccountant
from torch import nn

from deai.learn.privacy import PrivacyError
from deai.learn.privacy.audit import loss_threshold_audit, shadow_model_audit
from deai.learn.privacy.dpsgd import DPSGDConfig, train_dp_sgd


def data(n=200, d=10, seed=0, random_labels=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (
        torch.randint(0, 3, (n,), generator=g)
        if random_labels
        else (x[:, 0] > 0).long() + (x[:, 1] > 1).long()
    )
    return x, y


def linear(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(10, 3)


def test_dp_sgd_reports_opacus_epsilon_and_is_deterministic():
    torch.set_num_threads(1)
    x, y = data()
    cfg = DPSGDConfig(epochs=3, lr=0.5, sample_rate=0.1, max_grad_norm=1.0, noise_multiplier=1.2)
    m1, m2 = linear(), linear()
    r1 = train_dp_sgd(m1, x, y, cfg, seed=5)
    r2 = train_dp_sgd(m2, x, y, cfg, seed=5)
    assert r2.epsilon == r1.epsilon
    assert torch.equal(m1.weight, m2.weight)
    acc = RDPAccountant()
    for _ in range(r1.steps):
        acc.step(noise_multiplier=1.2, sample_rate=20 / 200)
    assert r1.epsilon == pytest.approx(acc.get_epsilon(delta=1e-5), rel=1e-9)
    assert r1.steps == 30 and len(r1.losses) == 3
    m3 = linear()
    train_dp_sgd(m3, x, y, cfg, seed=6)
    assert not torch.equal(m1.weight, m3.weight)
    m1(x).sum().backward()  # Opacus's per-sample hooks are gone: a plain backward makes no grad_sample
    assert getattr(m1.weight, "grad_sample", None) is None


def test_dp_sgd_with_target_epsilon_stays_within_it_and_learns():
    x, y = data(400)
    m = linear()
    r = train_dp_sgd(m, x, y, DPSGDConfig(epochs=5, lr=1.0, sample_rate=0.25, target_epsilon=3.0), seed=0)
    assert r.epsilon <= 3.0 + 1e-6
    with torch.no_grad():
        assert (m(x).argmax(1) == y).float().mean() > 0.7


def test_dp_sgd_refuses_bad_config_and_data():
    with pytest.raises(PrivacyError, match="exactly one"):
        DPSGDConfig(noise_multiplier=1.0, target_epsilon=2.0)
    x, y = data()
    x[0, 0] = float("nan")
    with pytest.raises(PrivacyError, match="NaN"):
        train_dp_sgd(linear(), x, y, DPSGDConfig(noise_multiplier=1.0), seed=0)


def overfit(x, y, seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model


def test_membership_attacks_detect_a_memorizing_model_and_not_an_untrained_one():
    torch.set_num_threads(1)
    x, y = data(300, random_labels=True)  # only memorization can fit random labels
    members, non_members, shadow = (x[:100], y[:100]), (x[100:200], y[100:200]), (x[200:], y[200:])
    target = overfit(*members, seed=0)
    loss = loss_threshold_audit(target, members, non_members)
    assert loss.auc > 0.8 and loss.members == loss.non_members == 100
    shadow_res = shadow_model_audit(target, members, non_members, shadow, overfit, shadows=2)
    assert shadow_res.auc > 0.7
    torch.manual_seed(1)
    untrained = nn.Sequential(nn.Linear(10, 3))
    assert abs(loss_threshold_audit(untrained, members, non_members).auc - 0.5) < 0.15
