import pytest
import torch

from deai.learn.attacks import (
    ALIE,
    ATTACKS,
    IPM,
    Backdoor,
    FreeRider,
    GaussianNoise,
    LabelFlip,
    SignFlip,
    SybilClones,
    get_attack,
)
from deai.learn.attacks.alie import alie_z
from deai.learn.data import Dataset
from deai.learn.models import build_model


def gen():
    return torch.Generator().manual_seed(0)


def test_update_attacks_follow_their_definitions():
    honest = torch.tensor([[1.0, 0.0], [3.0, 2.0], [2.0, 4.0]])
    own = torch.tensor([[1.0, -1.0], [0.5, 0.5]])
    assert torch.equal(
        SignFlip()(honest, own, 2, gen()) if False else SignFlip().craft(honest, own, 2, gen()), -own
    )
    assert torch.equal(SignFlip(scale=3).craft(honest, own, 2, gen()), -3 * own)
    ipm = IPM(epsilon=0.5).craft(honest, None, 2, gen())
    assert torch.allclose(ipm, (-0.5 * honest.mean(0)).expand(2, -1))
    a = ALIE(z=1.0).craft(honest, None, 2, gen())
    assert torch.allclose(a, (honest.mean(0) - honest.std(0)).expand(2, -1))
    assert torch.equal(FreeRider().craft(honest, None, 3, gen()), torch.zeros(3, 2))
    noise = FreeRider(mode="noise").craft(honest, None, 3, gen())
    assert noise.shape == (3, 2) and not torch.equal(noise, torch.zeros(3, 2))
    g = GaussianNoise(sigma=2.0).craft(torch.zeros(5, 10_000), None, 2, gen())
    assert abs(float(g.std()) - 2.0) < 0.05
    clones = SybilClones().craft(honest, own, 4, gen())
    assert torch.equal(clones, own[:1].expand(4, -1))
    with pytest.raises(ValueError, match="own"):
        SignFlip().craft(honest, None, 2, gen())


def test_alie_z_matches_the_paper():
    # n=50, f=24 (the paper's example): s = 2, z = Phi^-1(48/50) ~ 1.75.
    assert alie_z(50, 24) == pytest.approx(1.7507, abs=1e-3)
    assert alie_z(20, 5) == pytest.approx(0.5244, abs=1e-3)


def test_data_attacks():
    data = Dataset(torch.zeros(10, 6), torch.arange(10) % 3, 3, (6,))
    flipped = LabelFlip().poison(data, gen())
    assert torch.equal(flipped.y, 2 - data.y)
    bd = Backdoor(target=1, fraction=0.5, value=5.0)
    poisoned = bd.poison(data, gen())
    stamped = (poisoned.x[:, -4:] == 5.0).all(1)
    assert int(stamped.sum()) == 5 and bool((poisoned.y[stamped] == 1).all())
    assert torch.equal(poisoned.y[~stamped], data.y[~stamped])
    assert torch.equal(data.x, torch.zeros(10, 6))  # the original is untouched


def test_backdoor_success_rate():
    data = Dataset(torch.zeros(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]), 3, (4,))
    bd = Backdoor(target=2, value=1.0)
    m = build_model("logreg", 4, 3, seed=0)
    with torch.no_grad():  # predicts class 2 exactly when the trigger (all four features) is on
        m.linear.weight.zero_()
        m.linear.weight[2] = 1.0
        m.linear.bias.copy_(torch.tensor([0.5, 0.0, -1.0]))
    assert bd.success_rate(m, data) == 1.0
    assert Backdoor(target=2, value=0.0).success_rate(m, data) == 0.0


def test_registry():
    assert set(ATTACKS.names()) == {
        "label_flip",
        "sign_flip",
        "gaussian_noise",
        "alie",
        "ipm",
        "backdoor",
        "free_rider",
        "sybil_clones",
        "huge_row",
    }
    assert isinstance(get_attack("ipm", epsilon=2.0), IPM)
