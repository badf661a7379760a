#!/usr/bin/env python3
"""Write internal/stats/testdata/vectors.json: reference values for package stats.

Every expected value comes from a reference implementation, never from the Go
code under test:

  ztest          statsmodels proportions_ztest (pooled SE) and
                 confint_proportions_2indep(method='wald', compare='diff')
  welch          scipy.stats.ttest_ind_from_stats(equal_var=False); the CI is
                 diff -/+ scipy.stats.t.isf(alpha/2, df) * SE
  power          statsmodels NormalIndPower.power (and proportion_effectsize,
                 Cohen's h); sample sizes and minimum detectable effects are
                 that power function inverted with scipy.optimize.brentq at
                 full precision, because NormalIndPower.solve_power itself
                 stops at ~1e-7 (its answer is stored too, as *_statsmodels)
  msprt          an independent numpy transcription of Johari et al.'s
                 normal-mixture likelihood ratio and its confidence set; the
                 one-sided (half-normal mixture) ratio by numerical
                 integration with scipy.integrate.quad
  gbstats        GrowthBook gbstats 0.8.0 SequentialTwoSidedTTest (absolute
                 difference): its always-valid p-value and confidence interval
  rate_ratio     the exact rate-ratio test's Beta-mixture ratio, closed form
                 with scipy.special, checked against its defining integral (quad)
  sequential_n   the sample size at which the mixture boundary, looked at once,
                 rejects with the given power (numpy/scipy, brentq on n)
  srm            scipy.stats.chisquare
  mann_whitney   scipy.stats.mannwhitneyu(method='asymptotic',
                 use_continuity=True) on the histograms expanded to samples;
                 the effect size is the mean of (x>y) + 0.5 (x==y) over all
                 pairs, counted by numpy

Run it with the stats virtualenv (hack/venv.sh stats):

  "$(hack/venv.sh stats)/bin/python" internal/stats/testdata/gen_vectors.py \
      --out internal/stats/testdata/vectors.json

The output is deterministic (fixed seeds, sorted keys, repr floats; scalar
maths through Python's math module rather than numpy's CPU-dispatched
loops), so TestVectorsFresh in vectors_test.go can regenerate and compare it.
"""

import argparse
import importlib.metadata
import json
import math
import sys
import warnings

import numpy as np
import scipy
import scipy.integrate
import scipy.optimize
import scipy.special
import scipy.stats
import statsmodels
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    proportions_ztest,
)
from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic

norm = scipy.stats.norm


def f(x):
    """A plain Python float (json refuses numpy scalars); no NaN or Inf."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite reference value {x}")
    return x


def brentq(fn, lo, hi):
    """A root of fn in [lo, hi] to the last bit or two."""
    return scipy.optimize.brentq(fn, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=1000)


# --- 2. two-proportion z-test -------------------------------------------------

def ztest_cases():
    # (treatment successes, trials, control successes, trials, alpha)
    cases = [
        (830, 1000, 800, 1000, 0.05),
        (800, 1000, 830, 1000, 0.05),
        (5, 83, 12, 99, 0.05),
        (1, 10, 3, 12, 0.10),  # tiny n
        (0, 50, 2, 50, 0.05),  # a zero arm
        (50, 50, 48, 50, 0.05),  # a full arm
        (1, 100000, 3, 100000, 0.05),  # p near 0
        (99998, 100000, 99990, 100000, 0.01),  # p near 1
        (120, 1000, 1000, 10000, 0.05),  # unequal arms
        (20, 100, 1800, 10000, 0.05),
        (3, 3000, 2, 27000, 0.05),  # canary-shaped
        (6, 300, 3, 2700, 0.05),
        (4012, 5000, 4000, 5000, 0.2),
        (4012, 5000, 4000, 5000, 0.001),
        (123456, 200000, 122000, 200000, 0.05),
        (7, 7, 0, 9, 0.05),  # opposite extremes: pooled SE > 0, Wald SE = 0
    ]
    rng = np.random.default_rng(20260101)
    for _ in range(16):
        nt = int(rng.integers(2, 20000))
        nc = int(rng.integers(2, 20000))
        p = rng.uniform(0.001, 0.999)
        xt = int(rng.binomial(nt, p))
        xc = int(rng.binomial(nc, min(0.999, max(0.001, p + rng.normal(0, 0.02)))))
        if xt + xc in (0, nt + nc):
            continue
        cases.append((xt, nt, xc, nc, float(rng.choice([0.01, 0.05, 0.1]))))
    out = []
    for xt, nt, xc, nc, alpha in cases:
        z, p = proportions_ztest([xt, xc], [nt, nc])
        lo, hi = confint_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff", alpha=alpha)
        out.append({
            "treatment": {"successes": xt, "trials": nt},
            "control": {"successes": xc, "trials": nc},
            "alpha": alpha,
            "want": {"diff": f(xt / nt - xc / nc), "z": f(z), "p_value": f(p), "ci_lower": f(lo), "ci_upper": f(hi)},
        })
    return out


# --- 3. Welch's t-test --------------------------------------------------------

def welch_cases():
    # (n_t, mean_t, var_t, n_c, mean_c, var_c, alpha)
    cases = [
        (100, 0.52, 0.04, 100, 0.50, 0.04, 0.05),
        (2, 1.0, 0.5, 2, 0.0, 0.25, 0.05),  # tiny n: df near 1
        (3, 10.0, 4.0, 50, 9.0, 1.0, 0.05),
        (5000, 0.201, 0.0009, 50, 0.199, 0.0004, 0.05),  # unequal arms
        (40, 3.0, 0.0, 40, 2.5, 1.0, 0.05),  # one arm without variance
        (1000000, 100.0001, 1.0, 1000000, 100.0, 1.0, 0.05),
        (30, -5.0, 100.0, 31, 5.0, 0.01, 0.1),
        (12, 0.3, 1e-6, 15, 0.3, 2e-6, 0.01),  # equal means: t = 0
        (250, 1.2, 2.5, 260, 0.8, 2.7, 0.001),
        (8, 14.2, 9.0, 9, 1.0, 16.0, 0.05),  # far apart: tiny p-value
        (2600, 0.21, 1.0, 2500, 0.2, 1.5, 1e-9),  # df ~ 5e3, an extreme alpha
        (4990, 0.2, 1.0, 5000, 0.3, 1.0, 1e-6),  # df ~ 1e4, just below the large-df switch
        (25000, 0.2001, 1.0, 25000, 0.2, 1.0, 1e-9),  # df ~ 5e4, an extreme alpha
        (5010, 0.2, 1.0, 5000, 0.2001, 1.0, 0.05),  # df ~ 1e4, just past the large-df switch
        (100000000, 0.20001, 1.0, 100000000, 0.2, 1.0, 0.05),  # df ~ 2e8, t ~ 0.07
        (100000000, 0.2004, 1.0, 100000000, 0.2, 1.2, 0.01),  # df ~ 2e8, t ~ 2.7
        (1000000000, 5.0, 2.0, 900000000, 5.0001, 2.0, 0.05),  # df ~ 2e9
    ]
    rng = np.random.default_rng(20260102)
    for _ in range(14):
        n1 = int(rng.integers(2, 5000))
        n2 = int(rng.integers(2, 5000))
        v1 = float(rng.uniform(0.01, 10)) ** 2
        v2 = float(rng.uniform(0.01, 10)) ** 2
        m1 = float(rng.normal(0, 1))
        m2 = m1 + float(rng.normal(0, 0.2))
        cases.append((n1, m1, v1, n2, m2, v2, float(rng.choice([0.01, 0.05, 0.1]))))
    out = []
    for n1, m1, v1, n2, m2, v2, alpha in cases:
        res = scipy.stats.ttest_ind_from_stats(m1, math.sqrt(v1), n1, m2, math.sqrt(v2), n2, equal_var=False)
        se = math.sqrt(v1 / n1 + v2 / n2)
        # ttest_ind_from_stats does not return df: Welch-Satterthwaite, as scipy
        # computes it, and checked to be the df behind scipy's p-value.
        df = (v1 / n1 + v2 / n2) ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
        assert abs(2 * scipy.stats.t.sf(abs(res.statistic), df) - res.pvalue) <= 1e-15 * max(1e-300, res.pvalue) + 1e-300, (df, res)
        # isf(alpha/2), not ppf(1 - alpha/2): forming 1 - 5e-10 in floating point
        # costs 2e-9 of the quantile at alpha = 1e-9
        q = scipy.stats.t.isf(alpha / 2, df)
        d = m1 - m2
        out.append({
            "treatment": {"n": n1, "mean": m1, "variance": v1},
            "control": {"n": n2, "mean": m2, "variance": v2},
            "alpha": alpha,
            "want": {"diff": f(d), "t": f(res.statistic), "df": f(df), "p_value": f(res.pvalue),
                     "ci_lower": f(d - q * se), "ci_upper": f(d + q * se)},
        })
    return out


# --- 4. sample size, power, MDE (statsmodels NormalIndPower) -----------------

def power_solution(effect, alpha, power, ratio):
    """nobs1 with NormalIndPower.power == power, to full precision."""
    pw = NormalIndPower()
    hi = 1.0
    while pw.power(effect, hi, alpha, ratio) < power:
        hi *= 2
    return brentq(lambda n: pw.power(effect, n, alpha, ratio) - power, 1e-12, hi)


def mde_solution(nobs1, alpha, power, ratio):
    pw = NormalIndPower()
    hi = 1.0
    while pw.power(hi, nobs1, alpha, ratio) < power:
        hi *= 2
    return brentq(lambda e: pw.power(e, nobs1, alpha, ratio) - power, 1e-12, hi)


def power_proportion_cases():
    # (p_control, p_treatment, alpha, power, ratio = n_treatment / n_control)
    cases = [
        (0.80, 0.83, 0.05, 0.80, 1.0),
        (0.80, 0.83, 0.05, 0.90, 1.0),
        (0.80, 0.83, 0.01, 0.80, 0.25),
        (0.80, 0.78, 0.05, 0.80, 1.0),  # a drop: h < 0
        (0.10, 0.12, 0.05, 0.80, 1.0),
        (0.001, 0.002, 0.05, 0.80, 9.0),  # canary-shaped: p near 0, 9:1 split
        (0.001, 0.02, 0.05, 0.95, 1.0 / 9.0),
        (0.98, 0.99, 0.05, 0.80, 1.0),  # p near 1
        (0.5, 0.51, 0.10, 0.50, 2.0),
        (0.3, 0.6, 0.05, 0.99, 1.0),  # large effect: tiny n
        (0.5, 0.5001, 0.05, 0.80, 1.0),  # tiny effect: huge n
    ]
    rng = np.random.default_rng(20260107)
    for _ in range(12):
        pc = float(rng.uniform(0.01, 0.95))
        pt = float(min(0.99, max(0.005, pc + rng.normal(0, 0.05))))
        if pt == pc:
            continue
        cases.append((pc, pt, float(rng.choice([0.01, 0.05, 0.1])), float(rng.uniform(0.5, 0.95)),
                      float(rng.choice([0.25, 0.5, 1.0, 2.0, 9.0]))))
    out = []
    pw = NormalIndPower()
    for pc, pt, alpha, power, ratio in cases:
        h = proportion_effectsize(pt, pc)  # 2 asin sqrt(pt) - 2 asin sqrt(pc)
        n = power_solution(abs(h), alpha, power, ratio)
        n_sm = pw.solve_power(effect_size=abs(h), nobs1=None, alpha=alpha, power=power, ratio=ratio)
        n_fixed = math.ceil(n) + 17.0  # the power at some other n
        got_power = pw.power(abs(h), n_fixed, alpha, ratio)
        mde_h = mde_solution(n_fixed, alpha, power, ratio)
        # the treatment proportion at which Cohen's h equals the MDE (upwards)
        pt_mde = math.sin(math.asin(math.sqrt(pc)) + mde_h / 2) ** 2 if math.asin(math.sqrt(pc)) + mde_h / 2 <= math.pi / 2 else None
        want = {"h": f(h), "n_control": f(n), "n": n_fixed, "power_at_n": f(got_power), "mde_h_at_n": f(mde_h)}
        if math.isfinite(n_sm):
            want["n_control_statsmodels"] = f(n_sm)
        if pt_mde is not None:
            want["mde_p_treatment_at_n"] = f(pt_mde)
        out.append({"p_control": pc, "p_treatment": pt, "alpha": alpha, "power": power, "ratio": ratio, "want": want})
    return out


def power_mean_cases():
    # (effect size d = (mean_t - mean_c) / sd, alpha, power, ratio)
    cases = [
        (0.2, 0.05, 0.8, 1.0),
        (0.5, 0.05, 0.8, 1.0),
        (0.8, 0.05, 0.9, 1.0),
        (0.05, 0.01, 0.8, 3.0),
        (1.5, 0.05, 0.8, 0.5),
        (3.0, 0.1, 0.6, 1.0),  # tiny n
        (0.01, 0.05, 0.95, 1.0),  # huge n
        (0.3, 0.2, 0.3, 1.0),  # power just above alpha
    ]
    rng = np.random.default_rng(20260108)
    for _ in range(14):
        cases.append((float(10 ** rng.uniform(-2, 0.3)), float(rng.choice([0.01, 0.05, 0.1])),
                      float(rng.uniform(0.5, 0.95)), float(rng.choice([0.5, 1.0, 3.0]))))
    out = []
    pw = NormalIndPower()
    for d, alpha, power, ratio in cases:
        n = power_solution(d, alpha, power, ratio)
        n_sm = pw.solve_power(effect_size=d, nobs1=None, alpha=alpha, power=power, ratio=ratio)
        n_fixed = float(math.ceil(n * 1.3))
        want = {"n_control": f(n), "n": n_fixed,
                "power_at_n": f(pw.power(d, n_fixed, alpha, ratio)),
                "mde_at_n": f(mde_solution(n_fixed, alpha, power, ratio))}
        if math.isfinite(n_sm):  # solve_power gives up (NaN) on some tiny-n cases
            want["n_control_statsmodels"] = f(n_sm)
        out.append({"effect": d, "alpha": alpha, "power": power, "ratio": ratio, "want": want})
    return out


# --- 5. mSPRT: Johari et al.'s normal mixture, written out in numpy ------------

def log_lambda_two_sided(d, v, tau2):
    """log of sqrt(V/(V+tau^2)) exp(tau^2 d^2 / (2 V (V+tau^2))), d = estimate - null."""
    return 0.5 * math.log(v / (v + tau2)) + tau2 * d * d / (2 * v * (v + tau2))


def half_width_two_sided(v, tau2, alpha):
    """The theta with Lambda(theta) < 1/alpha form estimate -/+ this."""
    return math.sqrt(2 * v * (v + tau2) / tau2 * math.log(math.sqrt((v + tau2) / v) / alpha))


def log_lambda_greater_quad(d, v, tau2):
    """The half-normal mixture integral_0^inf LR(delta) 2 phi(delta/tau)/tau ddelta, numerically.

    LR(delta) = exp((delta d - delta^2 / 2) / V) is the Gaussian likelihood
    ratio of theta = null + delta against theta = null for an estimate whose
    distance from null is d. The integrand is a Gaussian bump in delta; quad
    integrates it around its peak, scaled by its maximum to stay finite.
    """
    a = 1 / tau2 + 1 / v
    b = d / v
    mode = max(0.0, b / a)
    sd = 1 / math.sqrt(a)
    expo = lambda x: -a * x * x / 2 + b * x
    top = expo(mode)
    g = lambda x: math.exp(expo(x) - top)
    lo, hi = max(0.0, mode - 60 * sd), mode + 60 * sd
    val, _ = scipy.integrate.quad(g, lo, hi, epsabs=0, epsrel=1e-13, limit=500, points=[mode] if lo < mode < hi else None)
    return top + math.log(val) + math.log(2 / (math.sqrt(2 * math.pi) * math.sqrt(tau2)))


def log_lambda_greater_closed(d, v, tau2):
    """The same integral in closed form (used only for root finding below; checked against quad)."""
    return math.log(2) + log_lambda_two_sided(d, v, tau2) + norm.logcdf(d * math.sqrt(tau2) / math.sqrt(v * (v + tau2)))


def msprt_cases():
    # (estimate, variance, null, tau2, alpha, sides)
    base = [
        (0.03, 0.0001, 0.0, 0.0004, 0.05, "two-sided"),
        (0.0, 0.0001, 0.0, 0.0004, 0.05, "two-sided"),
        (-0.05, 0.0004, 0.0, 0.0001, 0.05, "two-sided"),
        (0.01, 1e-6, 0.0, 1e-4, 0.01, "two-sided"),  # overwhelming evidence
        (0.001, 0.01, 0.0, 1e-8, 0.05, "two-sided"),  # tau tiny against V
        (0.5, 0.01, 0.0, 100.0, 0.05, "two-sided"),  # tau huge against V
        (2.0, 1.0, 1.5, 1.0, 0.1, "two-sided"),  # a non-zero null
        (0.019, 6.6e-5, 0.001, 2.3e-4, 0.05, "greater"),  # canary-shaped
        (0.0, 1e-5, 0.0, 1e-5, 0.05, "greater"),
        (-0.01, 1e-5, 0.0, 1e-4, 0.05, "greater"),  # better than null: tiny ratio
        (0.02, 1e-4, 0.0, 1e-4, 0.2, "greater"),
        (-0.02, 1e-4, 0.0, 1e-4, 0.05, "less"),
        (0.01, 4e-4, 0.005, 1e-3, 0.05, "less"),
    ]
    rng = np.random.default_rng(20260103)
    for _ in range(12):
        v = 10 ** rng.uniform(-7, -2)
        tau2 = v * 10 ** rng.uniform(-2, 3)
        est = rng.normal(0, math.sqrt(v) * 3)
        base.append((float(est), float(v), 0.0, float(tau2), float(rng.choice([0.01, 0.05, 0.1])),
                     str(rng.choice(["two-sided", "greater", "less"]))))
    out = []
    for est, v, null, tau2, alpha, sides in base:
        d = est - null
        if sides == "two-sided":
            ll = log_lambda_two_sided(d, v, tau2)
            w = half_width_two_sided(v, tau2, alpha)
            lo, hi = est - w, est + w
        else:
            dd = d if sides == "greater" else -d
            ll = log_lambda_greater_quad(dd, v, tau2)
            closed = log_lambda_greater_closed(dd, v, tau2)
            assert abs(ll - closed) <= 1e-11 * max(1, abs(ll)), (ll, closed)
            w2 = half_width_two_sided(v, tau2, alpha)
            w = brentq(lambda x: log_lambda_greater_closed(x, v, tau2) - math.log(1 / alpha), 0.0, w2)
            assert abs(log_lambda_greater_quad(w, v, tau2) - math.log(1 / alpha)) < 1e-11
            lo, hi = (est - w, None) if sides == "greater" else (None, est + w)
        want = {"log_lambda": f(ll), "p_value": f(min(1.0, math.exp(-ll)))}
        if lo is not None:
            want["ci_lower"] = f(lo)
        if hi is not None:
            want["ci_upper"] = f(hi)
        out.append({"estimate": est, "variance": v, "null": null, "tau2": tau2, "alpha": alpha, "sides": sides, "want": want})
    return out


def msprt_run_cases():
    """Looks at growing cumulative data: running-minimum p-value, intersected CIs."""
    out = []
    rng = np.random.default_rng(20260104)
    for pc, pt, sides in [(0.80, 0.80, "two-sided"), (0.80, 0.83, "two-sided"), (0.001, 0.02, "greater"), (0.5, 0.49, "less")]:
        tau2 = 0.0004 if sides != "greater" else 1e-4
        alpha = 0.05
        xt = xc = nt = nc = 0
        looks, want = [], []
        pmin, lo_max, hi_min = 1.0, -math.inf, math.inf
        for _ in range(12):
            inc = int(rng.integers(200, 800))
            xt += int(rng.binomial(inc, pt))
            xc += int(rng.binomial(inc * 3, pc))
            nt += inc
            nc += inc * 3
            p1, p2 = xt / nt, xc / nc
            v = p1 * (1 - p1) / nt + p2 * (1 - p2) / nc
            if v == 0:
                continue
            est = p1 - p2
            if sides == "two-sided":
                ll = log_lambda_two_sided(est, v, tau2)
                w = half_width_two_sided(v, tau2, alpha)
                lo, hi = est - w, est + w
            else:
                dd = est if sides == "greater" else -est
                ll = log_lambda_greater_closed(dd, v, tau2)
                w = brentq(lambda x: log_lambda_greater_closed(x, v, tau2) - math.log(1 / alpha), 0.0,
                           half_width_two_sided(v, tau2, alpha))
                lo, hi = (est - w, math.inf) if sides == "greater" else (-math.inf, est + w)
            pmin = min(pmin, min(1.0, math.exp(-ll)))
            lo_max, hi_min = max(lo_max, lo), min(hi_min, hi)
            looks.append({"treatment": {"successes": xt, "trials": nt}, "control": {"successes": xc, "trials": nc}})
            w_ = {"p_value": f(pmin), "look_p_value": f(min(1.0, math.exp(-ll)))}
            if math.isfinite(lo_max):
                w_["ci_lower"] = f(lo_max)
            if math.isfinite(hi_min):
                w_["ci_upper"] = f(hi_min)
            want.append(w_)
        out.append({"sides": sides, "tau2": tau2, "alpha": alpha, "null": 0.0, "looks": looks, "want": want})
    return out


def gbstats_cases():
    """GrowthBook's sequential test; Go gets the same inputs and its parametrisation of tau."""
    out = []
    rng = np.random.default_rng(20260105)
    prop = [
        (800, 1000, 830, 1000, 0.05, 5000),
        (4000, 5000, 4150, 5000, 0.05, 5000),
        (40, 1000, 55, 1000, 0.05, 100),
        (40, 1000, 55, 1000, 0.01, 100000),
        (20, 10000, 25, 1000, 0.05, 5000),  # unequal arms
        (12345, 20000, 12000, 19000, 0.1, 2000),
    ]
    for _ in range(8):
        na, nb = int(rng.integers(100, 50000)), int(rng.integers(100, 50000))
        p = rng.uniform(0.02, 0.98)
        prop.append((int(rng.binomial(na, p)), na, int(rng.binomial(nb, p * rng.uniform(0.95, 1.05))), nb,
                     float(rng.choice([0.01, 0.05, 0.1])), float(rng.choice([100, 1000, 5000, 20000]))))
    for xa, na, xb, nb, alpha, tuning in prop:
        cfg = SequentialConfig(difference_type="absolute", alpha=alpha, sequential_tuning_parameter=tuning)
        t = SequentialTwoSidedTTest(ProportionStatistic(sum=xa, n=na), ProportionStatistic(sum=xb, n=nb), cfg)
        lo, hi = t.confidence_interval
        out.append({"kind": "proportion", "control": {"successes": xa, "trials": na},
                    "treatment": {"successes": xb, "trials": nb}, "alpha": alpha, "tuning": tuning,
                    "want": {"estimate": f(t.point_estimate), "p_value": f(t.p_value), "ci_lower": f(lo), "ci_upper": f(hi)}})
    means = [
        (1000, 10.0, 4.0, 1000, 10.2, 4.0, 0.05, 5000),
        (50, 1.0, 1.0, 5000, 1.1, 2.0, 0.05, 1000),
        (20000, 0.25, 0.01, 20000, 0.2502, 0.011, 0.05, 5000),
    ]
    for _ in range(5):
        na, nb = int(rng.integers(10, 20000)), int(rng.integers(10, 20000))
        m = rng.normal(5, 2)
        means.append((na, float(m), float(rng.uniform(0.5, 3)) ** 2, nb, float(m + rng.normal(0, 0.1)),
                      float(rng.uniform(0.5, 3)) ** 2, 0.05, float(rng.choice([1000, 5000]))))
    for na, ma, va, nb, mb, vb, alpha, tuning in means:
        # gbstats takes sums; Go takes mean and variance and gets them from the sums the
        # same way gbstats does (SampleMeanStatistic), so both see the same floats.
        sa, ssa = na * ma, va * (na - 1) + (na * ma) ** 2 / na
        sb, ssb = nb * mb, vb * (nb - 1) + (nb * mb) ** 2 / nb
        cfg = SequentialConfig(difference_type="absolute", alpha=alpha, sequential_tuning_parameter=tuning)
        t = SequentialTwoSidedTTest(SampleMeanStatistic(n=na, sum=sa, sum_squares=ssa),
                                    SampleMeanStatistic(n=nb, sum=sb, sum_squares=ssb), cfg)
        lo, hi = t.confidence_interval
        out.append({"kind": "mean", "control": {"n": na, "sum": sa, "sum_squares": ssa},
                    "treatment": {"n": nb, "sum": sb, "sum_squares": ssb}, "alpha": alpha, "tuning": tuning,
                    "want": {"estimate": f(t.point_estimate), "p_value": f(t.p_value), "ci_lower": f(lo), "ci_upper": f(hi)}})
    return out


def sequential_n_cases():
    """n_control at which P(reject at that single look) == power, for the mixture boundary."""
    out = []
    cases = [
        # (effect, null, var_control, var_treatment, ratio, alpha, power, tau2, sides)
        (0.03, 0.0, 0.8 * 0.2, 0.83 * 0.17, 1.0, 0.05, 0.8, 0.03 ** 2 * 0.5, "two-sided"),
        (0.03, 0.0, 0.16, 0.1411, 1.0, 0.05, 0.9, 1e-4, "two-sided"),
        (-0.02, 0.0, 0.25, 0.25, 2.0, 0.01, 0.8, 4e-4, "two-sided"),
        (0.5, 0.0, 1.0, 4.0, 0.5, 0.1, 0.95, 0.25, "two-sided"),
        (0.019, 0.001, 0.001 * 0.999, 0.02 * 0.98, 1 / 9, 0.05, 0.9, 1e-4, "greater"),
        (0.01, 0.0, 0.0099, 0.0196, 1.0, 0.05, 0.8, 1e-5, "greater"),
        (-0.01, 0.0, 0.25, 0.25, 1.0, 0.05, 0.8, 1e-4, "less"),
    ]
    rng = np.random.default_rng(20260109)
    for _ in range(14):
        sides = str(rng.choice(["two-sided", "greater", "less"]))
        pc = float(rng.uniform(0.01, 0.9))
        eff = float(rng.uniform(0.005, 0.08)) * (1 if sides != "less" else -1)
        if sides == "two-sided" and rng.uniform() < 0.5:
            eff = -eff
        pt = min(0.99, max(0.001, pc + eff))
        cases.append((pt - pc, 0.0, pc * (1 - pc), pt * (1 - pt), float(rng.choice([1 / 9, 0.5, 1.0, 2.0])),
                      float(rng.choice([0.01, 0.05, 0.1])), float(rng.uniform(0.5, 0.95)),
                      float((pt - pc) ** 2 * 10 ** rng.uniform(-1, 1)), sides))
    for eff, null, vc, vt, ratio, alpha, power, tau2, sides in cases:
        dist = eff - null

        def reject_prob(nc):
            v = vc / nc + vt / (ratio * nc)
            if sides == "two-sided":
                w = half_width_two_sided(v, tau2, alpha)
                return norm.cdf((dist - w) / math.sqrt(v)) + norm.cdf((-dist - w) / math.sqrt(v))
            w = brentq(lambda x: log_lambda_greater_closed(x, v, tau2) - math.log(1 / alpha), 0.0,
                       half_width_two_sided(v, tau2, alpha))
            dd = dist if sides == "greater" else -dist
            return norm.cdf((dd - w) / math.sqrt(v))

        hi = 1.0
        while reject_prob(hi) < power:
            hi *= 2
        lo = hi / 2
        n = brentq(lambda x: reject_prob(x) - power, lo, hi)
        out.append({"effect": eff, "null": null, "variance_control": vc, "variance_treatment": vt, "ratio": ratio,
                    "alpha": alpha, "power": power, "tau2": tau2, "sides": sides,
                    "want": {"n_control": f(n)}})
    return out


# --- 5b. exact rate-ratio test on the events (the canary's 5xx) -------------

def rate_ratio_cases():
    """Beta mixture over the treatment's share q of the events, truncated to q > q0.

    The closed form uses scipy.special (betaln, betainc); it is checked
    against the defining integral, integral_{q0}^1 (q/q0)^x ((1-q)/(1-q0))^y
    Beta(q; a, b) dq / P(q > q0), computed with quad.
    """
    cases = [
        # (treatment events, requests, control events, requests, margin, a, b, alpha)
        (0, 300, 0, 2700, 0.0, 1, 1, 0.05),  # no events: Lambda = 1
        (1, 300, 0, 2700, 0.0, 1, 1, 0.05),
        (6, 300, 3, 2700, 0.0, 1, 1, 0.05),  # a 2% canary after one minute
        (12, 600, 5, 5400, 0.0, 1, 1, 0.05),
        (12, 600, 5, 5400, 1.0, 1, 1, 0.05),  # allowed twice stable's rate
        (3, 3000, 27, 27000, 0.0, 1, 1, 0.05),  # A/A-shaped
        (0, 3000, 30, 27000, 0.0, 1, 1, 0.05),  # canary clean: evidence for H0
        (50, 5000, 50, 5000, 0.0, 1, 1, 0.01),  # even split
        (90, 5000, 50, 5000, 0.5, 2, 5, 0.05),  # an informative prior
        (400, 30000, 900, 270000, 0.0, 1, 1, 0.05),  # many events
        (3, 100, 1, 100, 0.0, 0.5, 0.5, 0.1),  # Jeffreys prior
        (7, 7000, 60, 63000, 0.2, 1, 1, 0.05),
    ]
    rng = np.random.default_rng(20260111)
    for _ in range(12):
        nt, nc = int(rng.integers(100, 50000)), int(rng.integers(100, 200000))
        pc = float(10 ** rng.uniform(-4, -1))
        pt = pc * float(10 ** rng.uniform(-0.5, 1))
        cases.append((int(rng.binomial(nt, min(pt, 0.5))), nt, int(rng.binomial(nc, pc)), nc,
                      float(rng.choice([0.0, 0.25, 1.0])), float(rng.choice([0.5, 1.0, 2.0])),
                      float(rng.choice([0.5, 1.0, 3.0])), float(rng.choice([0.01, 0.05]))))
    out = []
    for x, nt, y, nc, margin, a, b, alpha in cases:
        share = nt / (nt + nc)
        rho = 1 + margin
        q0 = share * rho / (share * rho + 1 - share)
        ll = (scipy.special.betaln(a + x, b + y) - scipy.special.betaln(a, b)
              + math.log(scipy.special.betainc(b + y, a + x, 1 - q0)) - math.log(scipy.special.betainc(b, a, 1 - q0))
              - x * math.log(q0) - y * math.log1p(-q0))
        # the defining integral, in logs around the integrand's peak
        def logint(q):
            if q >= 1:  # the cases keep y + b > 1, so the integrand vanishes there
                return -math.inf
            terms = [(x, math.log(q / q0)), (y, math.log1p(-q) - math.log1p(-q0)), (a - 1, math.log(q)), (b - 1, math.log1p(-q))]
            return sum(c * v for c, v in terms if c != 0) - scipy.special.betaln(a, b)
        qs = np.linspace(q0, 1, 20001)[1:-1]
        top = max(logint(q) for q in qs)
        val, _ = scipy.integrate.quad(lambda q: math.exp(logint(q) - top), q0, 1, epsabs=0, epsrel=1e-12, limit=1000,
                                      points=[min(max((a + x - 1) / (a + b + x + y - 2), q0 + 1e-9), 1 - 1e-9)] if a + b + x + y > 2 else None)
        ll_quad = top + math.log(val) - math.log(scipy.special.betainc(b, a, 1 - q0))
        assert abs(ll - ll_quad) <= 1e-9 * max(1, abs(ll)), (x, y, ll, ll_quad)
        out.append({"treatment": {"successes": x, "trials": nt}, "control": {"successes": y, "trials": nc},
                    "margin": margin, "prior_a": a, "prior_b": b, "alpha": alpha,
                    "want": {"null_share": f(q0), "log_lambda": f(ll), "p_value": f(min(1.0, math.exp(-ll)))}})
    return out


# --- 6. sample-ratio mismatch -------------------------------------------------

def srm_cases():
    cases = [
        ([5000, 5000], [0.5, 0.5]),
        ([5100, 4900], [0.5, 0.5]),
        ([5300, 4700], [1, 1]),
        ([900, 100], [0.9, 0.1]),
        ([9180, 820], [9, 1]),  # a 10% canary that got 8.2%
        ([1, 0], [0.5, 0.5]),  # tiny n
        ([3334, 3333, 3333], [1, 1, 1]),
        ([100, 200, 300, 400], [0.1, 0.2, 0.3, 0.4]),
        ([0, 50, 50], [0.2, 0.4, 0.4]),
        ([500000, 501500], [0.5, 0.5]),
        ([49, 1], [0.999, 0.001]),
    ]
    rng = np.random.default_rng(20260110)
    for _ in range(14):
        k = int(rng.integers(2, 6))
        w = [float(x) for x in rng.uniform(0.05, 1, k)]
        n = int(rng.integers(10, 200000))
        share = np.array(w) / sum(w) * rng.uniform(0.97, 1.03, k)
        cases.append(([int(x) for x in rng.multinomial(n, share / share.sum())], w))
    out = []
    for obs, w in cases:
        total = sum(obs)
        exp = [x / sum(w) * total for x in w]
        res = scipy.stats.chisquare(obs, f_exp=exp)
        out.append({"observed": obs, "weights": w, "want": {"chi_square": f(res.statistic), "df": len(obs) - 1, "p_value": f(res.pvalue)}})
    return out


# --- 7. Mann-Whitney U from histogram buckets --------------------------------

def mann_whitney_cases():
    bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf]
    cases = [
        ([0, 5, 20, 30, 10, 3, 1, 0, 0, 0, 0, 0, 0], [0, 4, 22, 29, 12, 2, 1, 0, 0, 0, 0, 0, 0]),
        ([0, 0, 1, 5, 10, 30, 20, 5, 1, 0, 0, 0, 0], [0, 4, 22, 29, 12, 2, 1, 0, 0, 0, 0, 0, 0]),
        ([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),  # tiny n
        ([2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ([0, 0, 0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 900, 0, 0, 0, 0, 0, 0, 0]),  # heavy ties
        ([0, 0, 0, 0, 50, 50, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 450, 450, 0, 0, 0, 0, 0, 0, 0]),  # identical shape
        ([0, 0, 0, 3, 40, 200, 40, 10, 5, 2, 0, 0, 0], [0, 0, 0, 30, 400, 2000, 350, 80, 30, 10, 0, 0, 0]),  # 10% canary
        ([0, 0, 0, 3, 30, 150, 80, 20, 10, 7, 0, 0, 0], [0, 0, 0, 30, 400, 2000, 350, 80, 30, 10, 0, 0, 0]),  # slower canary
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0]),  # all in +Inf
        ([10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10]),  # separated
    ]
    rng = np.random.default_rng(20260106)
    for _ in range(8):  # heavy ties: everything in three or four buckets
        lo = int(rng.integers(3, 8))
        cx, cy = [0] * len(bounds), [0] * len(bounds)
        for i in range(lo, lo + int(rng.integers(3, 5))):
            cx[i], cy[i] = int(rng.integers(0, 500)), int(rng.integers(0, 4000))
        if sum(cx) and sum(cy):
            cases.append((cx, cy))
    for _ in range(10):
        shift = rng.normal(0, 0.4)
        nx, ny = int(rng.integers(5, 3000)), int(rng.integers(5, 3000))
        edges = np.array([math.log(b) for b in bounds[:-1]])
        xs = np.searchsorted(edges, rng.normal(-2.5 + shift, 1.0, nx), side="left")
        ys = np.searchsorted(edges, rng.normal(-2.5, 1.0, ny), side="left")
        cases.append(([int(c) for c in np.bincount(xs, minlength=len(bounds))],
                       [int(c) for c in np.bincount(ys, minlength=len(bounds))]))
    out = []
    for cx, cy in cases:
        # expand to samples: the bucket index stands for the value (ranks are all that matter)
        x = np.repeat(np.arange(len(cx)), cx).astype(float)
        y = np.repeat(np.arange(len(cy)), cy).astype(float)
        two = scipy.stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
        gt = scipy.stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic", use_continuity=True)
        lt = scipy.stats.mannwhitneyu(x, y, alternative="less", method="asymptotic", use_continuity=True)
        gt_pairs = sum(int(a) * int(sum(cy[:i])) for i, a in enumerate(cx))
        eq_pairs = sum(int(a) * int(b) for a, b in zip(cx, cy))
        cl = (gt_pairs + 0.5 * eq_pairs) / (len(x) * len(y))
        cl_np = float(np.mean((x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :]))) if len(x) * len(y) <= 4_000_000 else cl
        assert abs(cl - cl_np) < 1e-12
        out.append({"upper_bounds": [b if math.isfinite(b) else "+Inf" for b in bounds], "x": cx, "y": cy,
                    "want": {"u": f(two.statistic), "p_two_sided": f(two.pvalue), "p_greater": f(gt.pvalue),
                             "p_less": f(lt.pvalue), "effect": f(cl_np)}})
    return out


def main():
    warnings.simplefilter("ignore")  # statsmodels' solver warns on the cases it gives up on (see above)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="where to write vectors.json")
    args = ap.parse_args()
    doc = {
        "generator": "internal/stats/testdata/gen_vectors.py",
        "versions": {
            "python": "%d.%d" % sys.version_info[:2],
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "statsmodels": statsmodels.__version__,
            "gbstats": importlib.metadata.version("gbstats"),
        },
        "ztest": ztest_cases(),
        "welch": welch_cases(),
        "power_proportions": power_proportion_cases(),
        "power_means": power_mean_cases(),
        "msprt": msprt_cases(),
        "msprt_runs": msprt_run_cases(),
        "gbstats": gbstats_cases(),
        "sequential_n": sequential_n_cases(),
        "rate_ratio": rate_ratio_cases(),
        "srm": srm_cases(),
        "mann_whitney": mann_whitney_cases(),
    }
    with open(args.out, "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True, allow_nan=False)
        fh.write("\n")


if __name__ == "__main__":
    main()
