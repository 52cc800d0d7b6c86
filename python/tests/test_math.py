"""Pure math from Python: FedAvg's average, a server optimizer's round and the codecs, against
hand-computed values and numpy references."""
import numpy as np
import pytest

import cohort


def f32(*v):
    return np.array(v, dtype=np.float32)


def test_aggregate_is_the_example_weighted_mean():
    # Weights 1:3 over values that are exact in float32: (1*[1, 2] + 3*[5, -2]) / 4 = [4, -1].
    out = cohort.aggregate([([f32(1, 2)], 10), ([f32(5, -2)], 30)])
    assert isinstance(out, list) and out[0].dtype == np.float32
    np.testing.assert_array_equal(out[0], f32(4, -1))


def test_aggregate_named_arrays_keep_their_names_and_shapes():
    rng = np.random.default_rng(3)
    results = []
    for n in (7, 11, 2):
        p = {"fc.weight": rng.standard_normal((3, 4)).astype(np.float32),
             "fc.bias": rng.standard_normal(3).astype(np.float32)}
        results.append((p, n))
    out = cohort.aggregate(results)
    assert list(out) == ["fc.weight", "fc.bias"]
    for k in out:
        want = sum(n * p[k].astype(np.float64) for p, n in results) / 20.0
        assert out[k].shape == want.shape
        np.testing.assert_allclose(out[k], want, rtol=1e-6, atol=1e-6)
    # Read-only views of Cohort's memory.
    with pytest.raises(ValueError):
        out["fc.bias"][0] = 1.0


def test_fedavg_server_lr_round_by_hand():
    s = cohort.StrategyRound("fedavg", [f32(1, 1)], [1, 1], params={"server_lr": 0.5})
    # Clients end at [3, 1] and [1, 5]: deltas (start - end) [-2, 0] and [0, -4], mean [-1, -2];
    # the model moves by -0.5 x mean: [1.5, 2].
    new = s.round([[f32(3, 1)], [f32(1, 5)]])
    np.testing.assert_array_equal(new[0], f32(1.5, 2))
    assert s.version == 1


def test_fedadam_rounds_match_a_numpy_reference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(6).astype(np.float32)
    lr, b1, b2, tau = 0.1, 0.9, 0.99, 1e-3
    s = cohort.StrategyRound("fedadam", [x.copy()], [5, 15],
                             params={"server_lr": lr, "beta_1": b1, "beta_2": b2, "tau": tau})
    m = np.zeros(6)
    v = np.zeros(6)
    w = x.astype(np.float64)
    for t in range(1, 4):
        ends = [w + rng.standard_normal(6) * 0.1 for _ in range(2)]
        res = [[e.astype(np.float32)] for e in ends]
        got = s.round(res)[0]
        delta = (5 * (w - ends[0]) + 15 * (w - ends[1])) / 20  # start - end, weighted
        m = b1 * m + (1 - b1) * delta
        v = b2 * v + (1 - b2) * delta * delta
        # Adam's bias correction with Flower's exponent (round t + 1), as Cohort documents it.
        step = lr * np.sqrt(1 - b2 ** (t + 1)) / (1 - b1 ** (t + 1))
        w = w - step * m / (np.sqrt(v) + tau)
        np.testing.assert_allclose(got, w, rtol=2e-4, atol=2e-5)
        w = got.astype(np.float64)


def test_strategy_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="unknown"):
        cohort.StrategyRound("fedavgg", [f32(0)], [1])
    with pytest.raises(ValueError, match="fractoin"):
        cohort.StrategyRound("fedavg", [f32(0)], [1], params={"fractoin": 0.5})
    s = cohort.StrategyRound("fedavg", {"w": f32(0, 0)}, [1, 1])
    with pytest.raises(ValueError, match=r"array 'w' has shape \[3\], the model's is \[2\]"):
        s.round([{"w": f32(1, 2, 3)}, {"w": f32(1, 2)}])
    with pytest.raises(ValueError, match="NaN"):
        s.round([{"w": f32(1, np.nan)}, {"w": f32(1, 2)}])
    with pytest.raises(TypeError, match="float32"):
        s.round([{"w": np.array([1.0, 2.0])}, {"w": f32(1, 2)}])
    with pytest.raises(ValueError, match="C-contiguous"):
        s.round([{"w": np.arange(4, dtype=np.float32)[::2]}, {"w": f32(1, 2)}])
    with pytest.raises(ValueError, match="not an array of the model"):
        s.round([{"v": f32(1, 2)}, {"w": f32(1, 2)}])
    with pytest.raises(ValueError, match="2 results for 2 clients|3 results"):
        s.round([{"w": f32(1, 2)}] * 3)
    # After the failures the strategy still works: nothing half-applied.
    new = s.round([{"w": f32(1, 2)}, {"w": f32(3, 4)}])
    np.testing.assert_array_equal(new["w"], f32(2, 3))
    assert s.version == 1


def test_codecs_round_trip_and_reject_corruption():
    rng = np.random.default_rng(1)
    params = {"a": rng.standard_normal((64, 8)).astype(np.float32),
              "b": rng.standard_normal(100).astype(np.float32)}
    z = cohort.Codec("zstd")
    out = z.decode(z.encode(params), like=params)
    for k in params:
        np.testing.assert_array_equal(out[k], params[k])  # lossless: bit for bit
    q = cohort.Codec("int8")
    assert q.spec.startswith("int8")
    payload = q.encode(params, seed=7)
    raw = sum(v.nbytes for v in params.values())
    assert len(payload) < raw / 3.5
    assert payload == q.encode(params, seed=7)  # deterministic given the seed
    dec = q.decode(payload, like=params)
    for k in params:
        scale = np.abs(params[k]).max()
        assert np.abs(dec[k] - params[k]).max() <= scale / 127 + 1e-6
    bad = bytearray(payload)
    bad[len(bad) // 2] ^= 0xFF
    with pytest.raises((ValueError, RuntimeError), match="(?i)crc|corrupt|check"):
        q.decode(bytes(bad), like=params)
    with pytest.raises((ValueError, RuntimeError)):
        q.decode(payload[: len(payload) // 2], like=params)
    with pytest.raises(ValueError):
        cohort.Codec("int9")


def test_robust_rules_by_hand():
    ups = [[f32(1, 10)], [f32(2, 20)], [f32(100, -50)]]
    med, info = cohort.robust_aggregate("median", ups)
    np.testing.assert_array_equal(med[0], f32(2, 10))  # coordinate-wise median
    assert len(info["influence"]) == 3
    # Trimmed mean with beta 1/3 over 3 updates drops the extremes of each coordinate.
    tm, _ = cohort.robust_aggregate("trimmed_mean", ups, params={"beta": 0.34})
    np.testing.assert_array_equal(tm[0], f32(2, 10))
    # Krum (f = 1) over 5 updates: four close together, one far away; the outlier is not chosen.
    five = [{"w": f32(0, 0)}, {"w": f32(0.1, 0)}, {"w": f32(0, 0.1)}, {"w": f32(0.1, 0.1)},
            {"w": f32(50, 50)}]
    k, info = cohort.robust_aggregate("krum", five, params={"f": 1})
    assert np.abs(k["w"]).max() <= 0.1
    assert info["influence"][4] == 0.0
    mean, _ = cohort.robust_aggregate("mean", five, weights=[1, 1, 1, 1, 0.0001])
    assert np.abs(mean["w"]).max() < 0.1
    assert "krum" in cohort.robust_rules


def test_robust_rule_errors_are_named():
    ups = [[f32(1)], [f32(2)], [f32(3)]]
    with pytest.raises(ValueError, match="unknown"):
        cohort.robust_aggregate("krumm", ups)
    with pytest.raises(ValueError, match="params\\['betta'\\]"):
        cohort.robust_aggregate("trimmed_mean", ups, params={"betta": 0.1})
    with pytest.raises(ValueError, match="krum"):
        cohort.robust_aggregate("krum", ups, params={"f": 1})  # needs more than 2f + 2
    with pytest.raises(ValueError, match=r"updates\[1\]: array 0 has shape"):
        cohort.robust_aggregate("median", [[f32(1, 2)], [f32(1)]])
    with pytest.raises(ValueError, match="weights"):
        cohort.robust_aggregate("mean", ups, weights=[1, 2])
