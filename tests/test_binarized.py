"""Sign, the straight-through estimator, the binarized linear layer and the BNN."""

import pytest
import torch

from spinapse.golden.float_model.binarized import BinaryLinear, binarize, sign_ste
from spinapse.golden.float_model.bnn import BNN


def test_binarize_sign_of_zero_is_plus_one():
    x = torch.tensor([-2.0, -1e-30, -0.0, 0.0, 1e-30, 3.0])
    assert binarize(x).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]


def test_ste_mask_passes_gradient_where_abs_x_at_most_one():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0001, 3.0], requires_grad=True)
    y = sign_ste(x)
    assert y.tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    upstream = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    y.backward(upstream)
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 0.0]


def test_binary_linear_forward_uses_sign_and_passes_weight_gradient_unchanged():
    torch.manual_seed(0)
    layer = BinaryLinear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.3, -0.01, 0.0], [-2.0, 0.5, -0.2]]))
    x = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    out = layer(x)
    # W_b = [[+1, -1, +1], [-1, +1, -1]]: rows dot x = 1 - 2 + 3 = 2 and -1 + 2 - 3 = -2.
    assert out.tolist() == [[2.0, -2.0]]
    out.backward(torch.tensor([[1.0, 10.0]]))
    # dL/dW_h = dL/dW_b = g^T x, no mask on the weights (even where |W_h| > 1).
    assert layer.weight.grad.tolist() == [[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]
    assert x.grad.tolist() == [[1.0 - 10.0, -1.0 + 10.0, 1.0 - 10.0]]
    assert layer.binary_weight().tolist() == [[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]]


def test_binary_linear_init_range_and_validation():
    torch.manual_seed(1)
    w = BinaryLinear(784, 256).weight.detach()
    assert float(w.abs().max()) < 0.05
    # Uniform(-0.05, 0.05): mean |w| = 0.025; with 200704 samples the sd of the mean is 3.2e-5.
    assert float(w.abs().mean()) == pytest.approx(0.025, abs=3e-4)
    with pytest.raises(ValueError, match="sizes"):
        BinaryLinear(0, 3)
    with pytest.raises(ValueError, match="init_width"):
        BinaryLinear(3, 3, init_width=0.0)


def test_bnn_shapes_and_bn_state_round_trip():
    torch.manual_seed(2)
    net = BNN(20, (16, 8), 4)
    x = torch.rand(5, 20)
    out = net(x)
    assert out.shape == (5, 4)
    saved = net.bn_state()
    with torch.no_grad():
        for p in net.bn_parameters():
            p.add_(1.0)
    assert not torch.equal(net(x), out)
    net.load_bn_state(saved)
    assert torch.equal(net(x), out)
    with pytest.raises(ValueError, match="layers"):
        net.load_bn_state(saved[:1])
    with pytest.raises(ValueError, match="widths"):
        BNN(20, (0,), 4)
    assert [tuple(w.shape) for w in net.weight_parameters()] == [(16, 20), (8, 16), (4, 8)]
