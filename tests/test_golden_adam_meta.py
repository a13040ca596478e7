"""Adam_meta against the paper's numbers and against torch.optim.Adam."""

import math

import pytest
import torch

from spinapse.golden.float_model.adam_meta import AdamMeta, f_meta, fused_update_available


def test_f_meta_paper_values():
    # Reference values for m = 1.35 (metaplasticity reference, from Laborieux et al. 2021 Eq. 1).
    w = torch.tensor([0.5, 1.0, 2.0, 3.0, -1.0], dtype=torch.float64)
    got = f_meta(w, 1.35)
    assert got.tolist() == pytest.approx([0.654, 0.236, 0.018, 0.0012, 0.236], abs=6e-4)
    assert round(float(got[1]), 3) == 0.236
    # Closed form by hand: 1 - tanh(1.35)^2 = 1 / cosh(1.35)^2.
    assert float(got[1]) == pytest.approx(1 / math.cosh(1.35) ** 2, rel=1e-12)
    assert torch.equal(f_meta(w, 0.0), torch.ones_like(w))


def test_f_meta_rejects_negative_m():
    with pytest.raises(ValueError, match="m must be"):
        f_meta(torch.zeros(3), -0.1)


def _grad_sequence(shape, steps, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for _ in range(steps)]


@pytest.mark.parametrize("weight_decay", [0.0, 1e-7, 0.01])
def test_m0_reproduces_torch_adam_bit_for_bit(weight_decay):
    torch.manual_seed(3)
    w0 = torch.empty(17, 23).uniform_(-0.05, 0.05)
    b0 = torch.randn(23)
    a = [torch.nn.Parameter(w0.clone()), torch.nn.Parameter(b0.clone())]
    b = [torch.nn.Parameter(w0.clone()), torch.nn.Parameter(b0.clone())]
    ours = AdamMeta(
        [{"params": [a[0]], "meta": 0.0}, {"params": [a[1]]}], lr=0.005, weight_decay=weight_decay
    )
    ref = torch.optim.Adam(b, lr=0.005, weight_decay=weight_decay, foreach=False)
    gw, gb = _grad_sequence((17, 23), 25, 1), _grad_sequence((23,), 25, 2)
    for t in range(25):
        for p, q, g in ((a[0], b[0], gw[t]), (a[1], b[1], gb[t])):
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
        assert torch.equal(a[0], b[0]), f"weights differ at step {t + 1}"
        assert torch.equal(a[1], b[1]), f"bias differs at step {t + 1}"
    for p, q in zip(a, b):
        assert torch.equal(ours.state[p]["exp_avg"], ref.state[q]["exp_avg"])
        assert torch.equal(ours.state[p]["exp_avg_sq"], ref.state[q]["exp_avg_sq"])


def test_attenuation_only_on_shrinking_steps_and_moments_untouched():
    # Four weights: positive/negative W_h, gradient pushing towards zero or away from it.
    w0 = torch.tensor([1.0, 1.0, -1.0, -1.0])
    grad = torch.tensor(
        [1.0, -1.0, -1.0, 1.0]
    )  # step = -lr * sign(m_t): shrink, grow, shrink, grow
    meta, lr = 1.35, 0.01
    p_meta, p_plain = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    opt_meta = AdamMeta([p_meta], lr=lr, meta=meta)
    opt_plain = AdamMeta([p_plain], lr=lr, meta=0.0)
    p_meta.grad, p_plain.grad = grad.clone(), grad.clone()
    opt_meta.step()
    opt_plain.step()
    plain_step = (p_plain - w0).detach()
    meta_step = (p_meta - w0).detach()
    # First Adam step: |step| = lr * |g| / (|g| + eps) ~ lr, direction -sign(g).
    assert plain_step.tolist() == pytest.approx([-lr, lr, lr, -lr], rel=1e-6)
    shrinking = torch.tensor([True, False, True, False])
    fm = 1 / math.cosh(1.35) ** 2  # f_meta at |W_h| = 1
    # Tolerance: one float32 ulp of W_h = 1 (1.2e-7), the rounding of W_h + step.
    assert meta_step[shrinking].tolist() == pytest.approx([-lr * fm, lr * fm], abs=1.2e-7)
    assert torch.equal(meta_step[~shrinking], plain_step[~shrinking])
    # The stored moments are Adam's, whatever m is.
    assert torch.equal(opt_meta.state[p_meta]["exp_avg"], opt_plain.state[p_plain]["exp_avg"])
    assert torch.equal(opt_meta.state[p_meta]["exp_avg_sq"], opt_plain.state[p_plain]["exp_avg_sq"])


def test_per_group_meta_and_validation():
    p1, p2 = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    opt = AdamMeta([{"params": [p1], "meta": 2.0}, {"params": [p2], "meta": 0.0}], lr=0.1)
    p1.grad, p2.grad = torch.ones(3), torch.ones(3)
    opt.step()
    # Same gradient, shrinking step on both: only the group with m = 2 is attenuated.
    fm = 1 / math.cosh(2.0) ** 2
    assert (1 - p1).tolist() == pytest.approx([0.1 * fm] * 3, abs=1.2e-7)
    assert (1 - p2).tolist() == pytest.approx([0.1] * 3, abs=1.2e-7)
    with pytest.raises(ValueError, match="lr"):
        AdamMeta([p1], lr=0.0)
    with pytest.raises(ValueError, match=r"param_groups\[0\].meta"):
        AdamMeta([{"params": [p1], "meta": -1.0}])
    with pytest.raises(ValueError, match="weight_decay"):
        AdamMeta([p1], weight_decay=-1.0)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        AdamMeta([p1], betas=(0.9, 1.0))


def test_multi_step_against_a_written_out_reference():
    # The rule written out from the paper (Methods, Adam_meta) in float64, compared with the
    # float32 optimiser over 30 steps; tolerance 1e-6 absolute covers float32 rounding.
    torch.manual_seed(5)
    w = torch.empty(40, 30).uniform_(-0.3, 0.3)
    w[0, :5] = 0.0
    p = torch.nn.Parameter(w.clone())
    opt = AdamMeta([p], lr=0.01, weight_decay=1e-3, meta=2.5)
    ref = w.double().clone()
    m1, v1 = torch.zeros_like(ref), torch.zeros_like(ref)
    for t, g in enumerate(_grad_sequence((40, 30), 30, 9), start=1):
        p.grad = g.clone()
        opt.step()
        gd = g.double() + 1e-3 * ref
        m1 = 0.9 * m1 + 0.1 * gd
        v1 = 0.999 * v1 + 0.001 * gd * gd
        m_hat, v_hat = m1 / (1 - 0.9**t), v1 / (1 - 0.999**t)
        sign_w = torch.where(ref >= 0, 1.0, -1.0).double()
        f = 1 - torch.tanh(2.5 * ref.abs()) ** 2
        step = torch.where(sign_w * m1 > 0, f * m_hat, m_hat) / (v_hat.sqrt() + 1e-8)
        ref = ref - 0.01 * step
    assert torch.allclose(p.detach().double(), ref, rtol=0, atol=1e-6)
    assert not torch.allclose(ref, w.double(), atol=1e-2)  # the weights did move


def _trained_pair(fused: bool, steps: int = 40):
    from spinapse.golden.float_model.adam_meta import bnn_optimizer
    from spinapse.golden.float_model.bnn import BNN
    from spinapse.golden.float_model.training import train_epoch

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = BNN(784, (48,), 10)
        x = torch.rand(100 * steps, 784)
        y = torch.randint(0, 10, (x.shape[0],))
    opt = bnn_optimizer(model, [3.0, 3.0], lr=0.005, weight_decay=1e-7, fused=fused)
    train_epoch(model, opt, x, y, 100, torch.Generator().manual_seed(0))
    return model, opt


def test_eager_update_writes_w_b_and_uses_no_new_full_size_tensor():
    model, opt = _trained_pair(fused=False, steps=5)
    for lin in model.linears:
        # The buffer the optimiser wrote is sign(W_h), sign(0) = +1, and is marked fresh.
        assert torch.equal(lin.weight_b, lin.binary_weight())
        assert lin.current_binary() is lin.weight_b
    # W_h changed outside the optimiser (in place): the next forward rebuilds W_b.
    lin = model.linears[0]
    with torch.no_grad():
        lin.weight.neg_()
    assert torch.equal(lin.current_binary(), lin.binary_weight())
    assert "scratch" not in next(iter(opt.state_dict()["state"].values()))


@pytest.mark.skipif(not fused_update_available(), reason="no C++ compiler for torch.compile")
def test_fused_update_agrees_with_eager_to_float32_rounding():
    # 40 steps of a 784-48-10 BNN, m = 3, seed 0: the compiled one-pass update and the eager
    # operations may round differently (tanh, operation order) but must not flip any W_b.
    fused, _ = _trained_pair(fused=True)
    eager, _ = _trained_pair(fused=False)
    for a, b in zip(fused.linears, eager.linears):
        # |W_h| <= ~0.25 after 40 steps; 40 steps of a few ulps each stay below 1e-6.
        assert torch.allclose(a.weight, b.weight, rtol=0, atol=1e-6)
        assert torch.equal(a.weight_b, b.weight_b)
        assert torch.equal(a.weight_b, a.binary_weight())
