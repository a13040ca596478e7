"""The integer inference model against the float BNN it is exported from.

- Folding BatchNorm + sign into thresholds is exact: for every possible dot product of every
  neuron, the integer bit equals ``sign(BN(dot))`` computed directly in float64, for random
  BatchNorm parameters with positive, negative and zero ``gamma`` (seed 5).
- The XNOR-popcount dot equals ``2 * popcount(xnor) - N`` counted with ``int.bit_count``.
- On the embedded digits (784-64-64-10 trained 5 epochs, seed 0), the integer model's test
  accuracy is within 1 percentage point of the float model with binarized input and BatchNorm on
  the training-set statistics (the acceptance bound of issue 4).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from spinapse.cosim.digit_case import trained_digit_case
from spinapse.golden.float_model.bnn import BNN
from spinapse.golden.integer_model.inference import (
    BNStatistics,
    accuracy_report,
    binarize_pixels,
    export_tasks,
    export_with_statistics,
    float_reference_logits,
    population_statistics,
    xnor_popcount_dot,
)


@functools.lru_cache(maxsize=1)
def _digits():
    return trained_digit_case((64, 64), epochs=5, seed=0)


def test_pixel_threshold_is_half_scale():
    x = np.array([[0, 127, 128, 255]], dtype=np.float32) / np.float32(255.0)
    assert binarize_pixels(x).tolist() == [[0, 0, 1, 1]]


def test_xnor_popcount_dot_counts_agreements():
    rng = np.random.default_rng(4)
    n = 77
    x = rng.integers(0, 2, (6, n)).astype(np.uint8)
    w = rng.integers(0, 2, (5, n)).astype(np.uint8)
    dot = xnor_popcount_dot(x, w)
    to_int = lambda bits: int("".join(map(str, bits[::-1])), 2)  # noqa: E731
    for b in range(6):
        for j in range(5):
            agree = n - (to_int(x[b]) ^ to_int(w[j])).bit_count()
            assert dot[b, j] == 2 * agree - n


def _small_model_with_bn(n_in: int, n_hidden: int, seed: int) -> BNN:
    torch.manual_seed(seed)
    model = BNN(n_in, (n_hidden,), 3)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        gamma = torch.randn(n_hidden, generator=g)
        gamma[:3] = 0.0
        gamma[3:6] = -gamma[3:6].abs()
        model.bns[0].weight.copy_(gamma)
        model.bns[0].bias.copy_(torch.randn(n_hidden, generator=g) * 3)
    return model


def test_threshold_folding_exact_for_every_dot_value():
    n_in, n_hidden = 20, 40
    model = _small_model_with_bn(n_in, n_hidden, seed=5)
    rng = np.random.default_rng(5)
    mean = (rng.normal(0, 4, n_hidden),) + (np.zeros(3),)
    var = (rng.uniform(0.5, 30, n_hidden),) + (np.ones(3),)
    integer = export_with_statistics(model, BNStatistics(mean, var))
    layer = integer.layers[0]
    bn = model.bns[0]
    gamma = bn.weight.detach().double().numpy()
    beta = bn.bias.detach().double().numpy()
    dots = np.arange(-n_in, n_in + 1, 2)  # every reachable dot product (parity of N)
    z = gamma[None, :] * (dots[:, None] - mean[0][None, :]) / np.sqrt(var[0] + bn.eps) + beta
    want = (z >= 0).astype(np.uint8)  # sign(0) = +1
    got = (dots[:, None] >= layer.threshold[None, :]).astype(np.uint8) ^ layer.flip[None, :]
    assert np.array_equal(got, want)
    assert layer.flip[3:6].tolist() == [1, 1, 1]
    assert layer.flip[:3].tolist() == [0, 0, 0]
    # The popcount form used by the RTL agrees: dot >= T <=> popcount >= t.
    counts = (dots + n_in) // 2
    t = layer.popcount_thresholds()
    assert np.array_equal(counts[:, None] >= t[None, :], dots[:, None] >= layer.threshold[None, :])
    assert t.min() >= 0 and t.max() <= n_in + 1


def test_integer_hidden_layers_equal_float_reference_on_digits():
    """Hidden bits of the export equal the float reference's signs on real digits."""
    case = _digits()
    stats = population_statistics(case.model, case.train_x)
    integer = export_with_statistics(case.model, stats)
    bits = case.test_bits[:500]
    h = bits
    x = torch.from_numpy(bits.astype(np.float32) * 2 - 1).double()
    for i, layer in enumerate(integer.layers[:-1]):
        h = layer.forward(h)
        lin, bn = case.model.linears[i], case.model.bns[i]
        pre = x @ lin.binary_weight().double().T
        z = (
            bn.weight.double()
            * (pre - torch.from_numpy(stats.mean[i]))
            / torch.sqrt(torch.from_numpy(stats.var[i]) + bn.eps)
            + bn.bias.double()
        )
        x = torch.where(z >= 0, 1.0, -1.0).double()
        assert np.array_equal(h, (x.numpy() > 0).astype(np.uint8)), f"layer {i}"


def test_integer_accuracy_within_one_point_of_float():
    case = _digits()
    report = accuracy_report(case.model, case.train_x, case.test_x, case.test_y)
    assert report["float_accuracy"] > 0.8  # a trained model, not chance
    assert abs(report["difference_points"]) <= 1.0
    assert report["agreement"] >= 0.99


def test_output_scores_keep_the_float_ranking():
    case = _digits()
    stats = population_statistics(case.model, case.train_x)
    integer = export_with_statistics(case.model, stats)
    logits = float_reference_logits(case.model, stats, case.test_x[:300])
    _, scores = integer.predict(case.test_bits[:300])
    out = integer.layers[-1]
    # scores / 2**F approximate the float logits within the rounding of A and B:
    # |A dot + B - 2**F (a dot + b)| <= 0.5 |dot| + 0.5 <= 0.5 N + 0.5.
    err = np.abs(scores / 2.0**out.frac_bits - logits)
    assert err.max() <= (0.5 * out.n_in + 0.5) / 2.0**out.frac_bits


def test_task_dependent_thresholds():
    case = _digits()
    model = case.model
    state_a = model.bn_state()
    state_b = [{k: v * (1.5 if k == "bias" else 1.0) for k, v in s.items()} for s in state_a]
    x_a, x_b = case.train_x[:1000], case.train_x[1000:2000]
    a, b = export_tasks(model, [state_a, state_b], [x_a, x_b])
    assert all(np.array_equal(la.weights, lb.weights) for la, lb in zip(a.layers, b.layers))
    assert not np.array_equal(a.layers[0].threshold, b.layers[0].threshold)
    for k in state_a[0]:
        assert torch.equal(model.bn_state()[0][k], state_a[0][k])  # restored
    with pytest.raises(ValueError, match="BatchNorm states"):
        export_tasks(model, [state_a], [x_a, x_b])
