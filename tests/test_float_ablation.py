"""The float-ablation switches change the computation the way the integer rule does.

Expected values are derived by hand below (the integer rule's hinge error, thermometer bits,
the STE mask, one accumulator step), not taken from the code under test.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from spinapse.experiments import float_ablation as fa
from spinapse.golden.float_model.bnn import BNN


def test_hinge_gradient_is_the_integer_error_on_three_classes():
    # z = (3, 2.5, 0), label 0, margin 1: class 1 violates (2.5 + 1 >= 3), class 2 does not
    # (0 + 1 < 3). Integer error: e_1 = 1, e_2 = 0, e_0 = -1 (one violator).
    z = torch.tensor([[3.0, 2.5, 0.0]], requires_grad=True)
    loss = fa.multiclass_hinge(z, torch.tensor([0]), margin=1.0)
    loss.backward()
    assert loss.item() == pytest.approx(0.5)  # 2.5 + 1 - 3
    assert z.grad.tolist() == [[-1.0, 1.0, 0.0]]
    # Two violators, label 2: e = (1, 1, -2).
    z2 = torch.tensor([[1.0, 0.5, 1.2]], requires_grad=True)
    fa.multiclass_hinge(z2, torch.tensor([2]), margin=1.0).backward()
    assert z2.grad.tolist() == [[1.0, 1.0, -2.0]]


def test_squared_hinge_error_is_proportional_to_the_violation():
    # violations: class 1: 2.5 + 1 - 3 = 0.5, class 2: 2 + 1 - 3 = 0 -> none; gradient 0.5.
    z = torch.tensor([[3.0, 2.5, 1.0]], requires_grad=True)
    loss = fa.multiclass_hinge(z, torch.tensor([0]), margin=1.0, squared=True)
    loss.backward()
    assert loss.item() == pytest.approx(0.125)
    assert z.grad.tolist() == [[-0.5, 0.5, 0.0]]


def test_batch_mean_of_the_hinge():
    z = torch.tensor([[3.0, 2.5, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    fa.multiclass_hinge(z, torch.tensor([0, 1]), margin=1.0).backward()
    # Sample 2: both other classes violate by 1: loss 2, error (1, -2, 1); mean over 2 samples.
    assert z.grad.tolist() == [[-0.5, 0.5, 0.0], [0.5, -1.0, 0.5]]


def test_input_codings():
    x = torch.tensor([[0.0, 0.3, 0.5, 0.6, 0.9, 1.0] + [0.0] * 778])
    b = fa.encode(x, dataclasses.replace(fa.BASELINE, inputs="binary"))
    assert b[0, :6].tolist() == [0, 0, 1, 1, 1, 1]  # pixel >= 0.5, as IntegerLearner
    t = fa.encode(x, dataclasses.replace(fa.BASELINE, inputs="thermo", thermo_k=3))
    assert t.shape == (1, 3 * 784)
    # thresholds 0.25, 0.5, 0.75 (strictly above): 0.5 is above 0.25 only.
    assert t[0, 0:6].tolist() == [0, 1, 1, 1, 1, 1]
    assert t[0, 784 : 784 + 6].tolist() == [0, 0, 0, 1, 1, 1]
    assert t[0, 1568 : 1568 + 6].tolist() == [0, 0, 0, 0, 1, 1]
    assert fa.encode(x, fa.BASELINE) is x


def test_fixed_window_mask_in_popcount_units():
    z = torch.tensor([[-17.0, -16.0, 0.0, 15.5, 16.0, 16.5]], requires_grad=True)
    out = fa.sign_window(z, 16.0)
    assert out.tolist() == [[-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]]
    out.sum().backward()
    assert z.grad.tolist() == [[0.0, 1.0, 1.0, 1.0, 1.0, 0.0]]


def test_threshold_norm_has_no_scale_and_bn_has_one():
    a = torch.tensor([[0.0, 10.0], [4.0, 30.0]])
    thr = fa.AblationNorm(2, dataclasses.replace(fa.BASELINE, norm="thr", window="fixed"))
    thr.train()
    assert thr(a).tolist() == [[-2.0, -10.0], [2.0, 10.0]]  # a - batch mean
    assert list(thr.parameters()) == []
    bn = fa.AblationNorm(2, fa.BASELINE)
    bn.train()
    z = bn(a)
    # (a - mean) / sqrt(var + 1e-5): var = 4 and 100.
    assert z[:, 0].tolist() == pytest.approx([-2 / (4 + 1e-5) ** 0.5, 2 / (4 + 1e-5) ** 0.5])
    assert z[:, 1].tolist() == pytest.approx([-10 / (100 + 1e-5) ** 0.5, 10 / 100.00001**0.5])


def test_ema_threshold_tracks_like_the_integer_rule():
    cfg = dataclasses.replace(fa.BASELINE, norm="thr", stats="ema", thr_shift=2, batch=1)
    n = fa.AblationNorm(1, cfg)
    n.train()
    # T starts at 0: c = 8 - 0; then T += c / 4 = 2; next c = 8 - 2 = 6.
    assert n(torch.tensor([[8.0]])).item() == 8.0
    assert n.ema_mean.item() == 2.0
    assert n(torch.tensor([[8.0]])).item() == 6.0


def test_baseline_starts_from_the_golden_model_weights():
    torch.manual_seed(3)
    golden = BNN(784, (128, 128), 10)
    learner = fa.AblationLearner(fa.BASELINE, seed=3)
    for g, a in zip(golden.linears, learner.net.linears):
        assert torch.equal(g.weight, a.weight)


def test_sgd_meta_step_by_hand():
    w = torch.nn.Parameter(torch.tensor([0.5, 0.5, -0.5]))
    opt = fa.SGDMeta([{"params": [w], "meta": 2.0}], lr=0.1, leak_shift=3)
    for _ in range(2):
        w.grad = torch.tensor([1.0, -1.0, 1.0])
        if _ == 0:
            opt.step()
    # Step 1: M = g; w0 shrinks (w M > 0): f = 1 - tanh^2(1) = 0.41997; w1, w2 grow.
    f = 1 - torch.tanh(torch.tensor(1.0)).item() ** 2
    assert w.tolist() == pytest.approx([0.5 - 0.1 * f, 0.6, -0.6], rel=1e-6)
    opt.step()
    # Step 2: M = 0.875 M + g = 1.875 g.
    assert opt.state[w]["M"].tolist() == pytest.approx([1.875, -1.875, 1.875])


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="batch 1 needs stats 'ema'"):
        dataclasses.replace(fa.BASELINE, batch=1)
    with pytest.raises(ValueError, match="loss must be one of"):
        dataclasses.replace(fa.BASELINE, loss="mse")
    with pytest.raises(ValueError, match="thermo_k must be an int in"):
        dataclasses.replace(fa.BASELINE, thermo_k=9)
    with pytest.raises(ValueError, match="unknown variant"):
        fa.variant("nope")
    assert fa.variant("cum-acd,margin=10")[1].margin == 10.0


def test_one_tiny_training_step_changes_only_through_the_switches():
    # A 784-4-10 network, 8 samples, one batch: hinge and cross-entropy give different W_h.
    x = torch.rand(8, 784, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8) % 10
    gen = [torch.Generator().manual_seed(1) for _ in range(2)]
    out = []
    for loss, g in zip(("ce", "hinge"), gen):
        cfg = dataclasses.replace(fa.BASELINE, hidden=(4,), batch=8, loss=loss, margin=1.0)
        learner = fa.AblationLearner(cfg, seed=0)
        learner.train_epoch(x, y, g)
        out.append(learner.net.linears[1].weight.detach().clone())
    assert not torch.equal(out[0], out[1])


def test_detached_statistics_drop_only_the_gradient_through_the_mean():
    # z = a - mean(a) over a batch of 2: with the gradient through the mean, d(z_0)/d(a) is
    # (1/2, -1/2); detached it is (1, 0). Same forward values.
    a = torch.tensor([[0.0], [4.0]], requires_grad=True)
    out = {}
    for stats in ("batch", "batch-detached"):
        cfg = dataclasses.replace(fa.BASELINE, norm="thr", window="fixed", stats=stats)
        n = fa.AblationNorm(1, cfg)
        n.train()
        z = n(a)
        assert z.detach().tolist() == [[-2.0], [2.0]]
        (g,) = torch.autograd.grad(z[0, 0], a)
        out[stats] = g.tolist()
    assert out == {"batch": [[0.5], [-0.5]], "batch-detached": [[1.0], [0.0]]}


def test_no_affine_learns_no_gamma_beta():
    net = fa.AblationNet(dataclasses.replace(fa.BASELINE, hidden=(4,), affine=False))
    assert net.bn_parameters() == []
    assert len(fa.AblationNet(dataclasses.replace(fa.BASELINE, hidden=(4,))).bn_parameters()) == 4


def test_sgd_step_rounded_to_the_integer_unit():
    # lr M = 0.1 * (1, -3, 0.2) = (0.1, -0.3, 0.02); quantum 1/16 = 0.0625: toward zero
    # 0.1 -> 0.0625, -0.3 -> -0.25, 0.02 -> 0 (m = 0: no attenuation).
    w = torch.nn.Parameter(torch.zeros(3))
    opt = fa.SGDMeta([{"params": [w], "meta": 0.0}], lr=0.1, quantum=1 / 16)
    w.grad = torch.tensor([1.0, -3.0, 0.2])
    opt.step()
    assert w.tolist() == [-0.0625, 0.25, 0.0]
    # Stochastic: a step of 0.4 units moves one unit in about 40 % of 20000 weights
    # (seed 0; binomial sd 0.35 %, tolerance 1.5 %).
    torch.manual_seed(0)
    w2 = torch.nn.Parameter(torch.zeros(20000))
    opt2 = fa.SGDMeta([{"params": [w2], "meta": 0.0}], lr=1.0, quantum=1.0, stoch_round=True)
    w2.grad = torch.full((20000,), 0.4)
    opt2.step()
    assert set(w2.tolist()) <= {0.0, -1.0}
    assert float((w2 == -1.0).float().mean()) == pytest.approx(0.4, abs=0.015)
