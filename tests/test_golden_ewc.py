"""EWC: the quadratic penalty and the batched Fisher estimate."""

import pytest
import torch
from torch.nn import functional as F

from spinapse.golden.float_model.bnn import BNN
from spinapse.golden.float_model.ewc import EWC


def test_penalty_value_by_hand():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))
    ewc = EWC([w], lam=4.0)
    assert float(ewc.penalty().detach()) == 0.0
    ewc.fishers.append([torch.tensor([1.0, 0.5, 0.0])])
    ewc.anchors.append([torch.tensor([0.0, 0.0, 0.0])])
    # 4 / 2 * (1 * 1 + 0.5 * 4 + 0 * 9) = 6
    assert float(ewc.penalty().detach()) == 6.0
    ewc.penalty().backward()
    # d/dw = lam * F * (w - w*) = [4, 4, 0]
    assert w.grad.tolist() == [4.0, 4.0, 0.0]
    with pytest.raises(ValueError, match="ewc_lambda"):
        EWC([w], lam=-1.0)


def test_consolidate_matches_an_independent_fisher_and_anchors():
    torch.manual_seed(0)
    net = BNN(12, (8,), 3)
    x, y = torch.rand(50, 12), torch.randint(0, 3, (50,))
    ewc = EWC(net.weight_parameters(), lam=1.0)
    ewc.consolidate(net, x, y, samples=40, batch_size=20)
    expected = [torch.zeros_like(p) for p in net.weight_parameters()]
    for a in (0, 20):
        grads = torch.autograd.grad(
            F.cross_entropy(net(x[a : a + 20]), y[a : a + 20]), net.weight_parameters()
        )
        for e, g in zip(expected, grads):
            e += 20 * g**2 / 2
    for got, want in zip(ewc.fishers[0], expected):
        assert torch.allclose(got, want, rtol=1e-6, atol=0)
    for anchor, p in zip(ewc.anchors[0], net.weight_parameters()):
        assert torch.equal(anchor, p.detach())
    # At the anchor the penalty is zero; moving one weight by d adds lam / 2 * F * d^2.
    assert float(ewc.penalty().detach()) == 0.0
    with torch.no_grad():
        net.weight_parameters()[0][0, 0] += 0.5
    f00 = float(ewc.fishers[0][0][0, 0])
    assert float(ewc.penalty().detach()) == pytest.approx(0.5 * f00 * 0.25, rel=1e-6)
    state = ewc.state_dict()
    other = EWC(net.weight_parameters(), lam=3.0)
    other.load_state_dict(state)
    assert other.lam == 1.0 and torch.equal(other.fishers[0][1], ewc.fishers[0][1])
