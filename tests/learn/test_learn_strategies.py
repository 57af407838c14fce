import pytest
import torch

from deai.learn.errors import UnknownName
from deai.learn.strategies import STRATEGIES, DiLoCo, FedAdam, FedAvg, FedProx, FedYogi, get_strategy


def test_fedavg_and_fedprox():
    g, d = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0])
    assert torch.equal(FedAvg()(g, d), g + d)
    assert torch.equal(FedAvg(server_lr=0.5)(g, d), g + 0.5 * d)
    p = FedProx(mu=0.3)
    assert p.prox_mu == 0.3 and torch.equal(p(g, d), g + d)
    assert FedAvg.prox_mu == 0.0


def test_fedadam_two_steps_by_hand():
    s = FedAdam(server_lr=0.1, beta1=0.9, beta2=0.99, tau=1e-3)
    g = torch.zeros(1)
    d1, d2 = torch.tensor([2.0]), torch.tensor([-1.0])
    x1 = s(g, d1)
    m1, v1 = 0.1 * 2.0, 0.01 * 4.0
    assert torch.allclose(x1, torch.tensor([0.1 * m1 / (v1**0.5 + 1e-3)]))
    x2 = s(x1, d2)
    m2, v2 = 0.9 * m1 + 0.1 * -1.0, 0.99 * v1 + 0.01 * 1.0
    assert torch.allclose(x2, x1 + 0.1 * m2 / (v2**0.5 + 1e-3))


def test_fedyogi_second_moment_by_hand():
    s = FedYogi(server_lr=0.1, beta1=0.0, beta2=0.9, tau=1e-3)
    g = torch.zeros(1)
    x1 = s(g, torch.tensor([2.0]))
    v1 = 0 - 0.1 * 4.0 * -1.0  # sign(0 - 4) = -1
    assert torch.allclose(s.v, torch.tensor([v1]))
    assert torch.allclose(x1, torch.tensor([0.1 * 2.0 / (v1**0.5 + 1e-3)]))
    s(x1, torch.tensor([0.1]))
    v2 = v1 - 0.1 * 0.01 * 1.0  # sign(0.4 - 0.01) = +1
    assert torch.allclose(s.v, torch.tensor([v2]))


def test_diloco_nesterov_by_hand():
    s = DiLoCo(server_lr=0.7, momentum=0.9)
    g = torch.tensor([1.0])
    x1 = s(g, torch.tensor([0.2]))  # outer grad -0.2, buf = -0.2
    assert torch.allclose(x1, g - 0.7 * (-0.2 + 0.9 * -0.2))
    x2 = s(x1, torch.tensor([0.1]))  # grad -0.1, buf = 0.9 * -0.2 - 0.1 = -0.28
    assert torch.allclose(x2, x1 - 0.7 * (-0.1 + 0.9 * -0.28))


def test_state_roundtrip_and_reset():
    a = FedAdam()
    a(torch.zeros(3), torch.ones(3))
    st = a.state()
    b = FedAdam()
    b.load_state(st)
    d = torch.tensor([0.3, -0.2, 0.1])
    assert torch.equal(a(torch.zeros(3), d), b(torch.zeros(3), d))
    a.reset()
    assert a.state() == {}


def test_registry_and_validation():
    assert set(STRATEGIES.names()) == {"fedavg", "fedprox", "fedadam", "fedyogi", "diloco"}
    assert isinstance(get_strategy("diloco", server_lr=0.5), DiLoCo)
    with pytest.raises(UnknownName):
        get_strategy("scaffold")
    with pytest.raises(ValueError, match="differ"):
        FedAvg()(torch.zeros(3), torch.zeros(2))
