"""The NumPy oracle, checked against naive loops written straight from the definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads import get_workload, list_workloads
from workloads import reference as R


def naive_conv(x, w, b, stride, pad, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.zeros((n, c, h + pad[0] + pad[1], wd + pad[2] + pad[3]))
    xp[:, :, pad[0]:pad[0] + h, pad[2]:pad[2] + wd] = x
    oh = (xp.shape[2] - kh) // stride[0] + 1
    ow = (xp.shape[3] - kw) // stride[1] + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for ni in range(n):
        for oc in range(o):
            g = oc // og
            for i in range(oh):
                for j in range(ow):
                    patch = xp[ni, g * cg:(g + 1) * cg, i * stride[0]:i * stride[0] + kh,
                               j * stride[1]:j * stride[1] + kw]
                    out[ni, oc, i, j] = np.sum(patch * w[oc]) + (b[oc] if b is not None else 0)
    return out


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 2), groups=st.sampled_from([1, 2, 4]), cmul=st.integers(1, 2),
    omul=st.integers(1, 2), h=st.integers(3, 7), w=st.integers(3, 7), k=st.integers(1, 3),
    s=st.integers(1, 2), pad=st.tuples(*[st.integers(0, 2)] * 4), bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_conv2d_matches_naive_loop(n, groups, cmul, omul, h, w, k, s, pad, bias, seed):
    rng = np.random.default_rng(seed)
    c, o = groups * cmul, groups * omul
    if h + pad[0] + pad[1] < k or w + pad[2] + pad[3] < k:
        return
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((o, c // groups, k, k))
    b = rng.standard_normal(o) if bias else None
    got = R.conv2d(x, wt, b, (s, s), pad, groups)
    np.testing.assert_allclose(got, naive_conv(x, wt, b, (s, s), pad, groups), rtol=1e-10,
                               atol=1e-10)


def test_maxpool_pads_with_minus_infinity() -> None:
    x = -np.ones((1, 1, 4, 4))  # all negative: zero padding would win the max
    out = R.pool2d(x, (3, 3), (2, 2), (0, 1, 0, 1), "max")
    assert out.shape == (1, 1, 2, 2)
    assert np.all(out == -1)


def test_lrn_matches_definition() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 3, 3))
    r, bias, alpha, beta = 2, 1.5, 0.3, 0.75
    want = np.empty_like(x)
    for c in range(7):
        lo, hi = max(0, c - r), min(6, c + r)
        sq = np.sum(x[:, lo:hi + 1] ** 2, axis=1)
        want[:, c] = x[:, c] / (bias + alpha * sq) ** beta
    np.testing.assert_allclose(R.lrn(x, r, bias, alpha, beta), want, rtol=1e-12)


def test_batchnorm_and_pad_channels() -> None:
    x = np.arange(2 * 3 * 4 * 4, dtype=float).reshape(2, 3, 4, 4)
    g, b, m, v = np.array([1., 2., 3.]), np.array([0., 1., -1.]), np.array([1., 2., 3.]), np.array(
        [4., 1., 0.25])
    out = R.batchnorm(x, g, b, m, v, eps=0.0)
    np.testing.assert_allclose(out[:, 1], (x[:, 1] - 2) / 1 * 2 + 1)
    p = R.pad_channels(x, 2, 1, 2)
    assert p.shape == (2, 6, 2, 2)
    assert np.all(p[:, 0] == 0) and np.all(p[:, 4:] == 0)
    np.testing.assert_array_equal(p[:, 1:4], x[:, :, ::2, ::2])


@pytest.mark.parametrize("name", list_workloads())
def test_forward_is_finite_and_weights_deterministic(name: str) -> None:
    spec = get_workload(name)
    w1, w2 = R.init_weights(spec, seed=3), R.init_weights(spec, seed=3)
    assert all(np.array_equal(w1[k], w2[k]) for k in w1)
    R.check_weights(spec, w1)
    x, _ = R.synthetic_batch(spec, 1)
    out = R.forward(spec, w1, x)
    assert out.shape == (1, spec.num_classes)
    assert np.all(np.isfinite(out)) and np.std(out) > 0


def test_check_weights_names_the_problem() -> None:
    spec = get_workload("lenet5")
    w = R.init_weights(spec)
    w["conv1/weight"] = w["conv1/weight"][:, :, :3]
    with pytest.raises(ValueError, match="conv1/weight has shape"):
        R.check_weights(spec, w)
    del w["conv1/weight"]
    with pytest.raises(ValueError, match="missing"):
        R.check_weights(spec, w)


def test_max_rel_error_is_scale_relative() -> None:
    ref = np.array([[10.0, -5.0, 0.0]])
    assert R.max_rel_error(ref + np.array([[0.0, 0.0, 1e-3]]), ref) == pytest.approx(1e-4)
