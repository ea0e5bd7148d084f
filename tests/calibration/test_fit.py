import numpy as np

from calibration import fit


def test_golden_min_vectorised():
    c = np.linspace(-2, 3, 50)
    x, fx = fit.golden_min(lambda x: (x - c) ** 2, np.full(50, -5.0), np.full(50, 5.0), iters=40)
    assert np.allclose(x, c, atol=1e-6)


def test_fit_charging_recovers_parameters_and_errors():
    rng = np.random.default_rng(1)
    n, m = 64, 500
    tau = rng.uniform(6e-6, 18e-6, n)
    t0 = rng.uniform(1e-6, 4e-6, n)
    R = 80 + rng.normal(0, 3, n)
    C = 200 + rng.normal(0, 5, n)
    isi = t0 + tau * np.log((C - R) / (C - 150))
    s = rng.uniform(0, 1, (n, m)) * (t0 + 0.75 * (isi - t0))[:, None]
    v = fit.charging_curve(s, R, C, tau, t0) + rng.normal(0, 0.7, (n, m))
    f = fit.fit_charging(s, np.rint(v), np.ones_like(v), np.full(n, 2e-6), isi * 0.98, C=C)
    rel = f["tau"] / tau - 1
    assert abs(rel.mean()) < 0.005 and rel.std() < 0.02
    assert np.all(np.abs(f["R"] - R) < 0.6)
    assert np.all(np.abs(f["t0"] - t0) < 0.15e-6)
    # the reported uncertainty is about right (within a factor 2)
    assert 0.5 < np.median(np.abs(rel) / (f["tau_err"] / tau)) / 0.674 < 2.0


def test_fit_psp_recovers_tau_syn_and_amplitude():
    rng = np.random.default_rng(2)
    n, m = 64, 600
    tm = rng.uniform(10e-6, 14e-6, n)
    ts = rng.uniform(4e-6, 8e-6, n)
    J = rng.uniform(80, 150, n)
    s1 = rng.uniform(-5e-6, 60e-6, (1, m))
    s2 = s1 + 60e-6
    v = 80 + J[:, None] * (fit.psp_kernel(s1, tm, ts) + fit.psp_kernel(s2, tm, ts)) + rng.normal(0, 0.8, (n, m))
    f = fit.fit_psp([s1, s2], v, np.ones_like(v), tm)
    assert np.std(f["tau_s"] / ts - 1) < 0.02 and abs(np.mean(f["tau_s"] / ts - 1)) < 0.005
    assert np.std(f["J"] / J - 1) < 0.02
    g = fit.fit_psp([s1, s2], v, np.ones_like(v), tm, tau_guess=ts * 3.5)  # a poor guess falls back to the full range
    assert np.std(g["tau_s"] / ts - 1) < 0.02
