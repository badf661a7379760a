#!/usr/bin/env python3
"""Write cmd/platformctl/testdata/abtest/analyze_vectors.json: inputs for
`platformctl abtest analyze` and what reference implementations say of them.

Every expected value comes from a reference implementation, never from the Go
code under test:

  z_test       statsmodels proportions_ztest (pooled SE) for the p-value and
               confint_proportions_2indep(method='wald', compare='diff') for
               the interval of treatment minus control
  srm          scipy.stats.chisquare of the arms' n against the expected split
  sequential   GrowthBook gbstats 0.8.0 SequentialTwoSidedTTest (absolute
               difference, one look): its always-valid p-value and interval.
               gbstats is tuned by N*; the analyser fixes the mixture variance
               tau^2 from (alpha, power, mde) instead (docs/statistics.md,
               MixtureForEffect), so this script computes that tau^2 from the
               formula and passes gbstats N* = r*(alpha) sigma^2 / tau^2 with
               sigma^2 = (n_c + n_t) V, V the Wald variance, which is the same
               mixture (internal/stats matches gbstats this way to 1e-9)

Run it with the stats virtualenv (hack/venv.sh stats):

  "$(hack/venv.sh stats)/bin/python" cmd/platformctl/testdata/abtest/gen_analyze_vectors.py \
      --out cmd/platformctl/testdata/abtest/analyze_vectors.json

The output is deterministic, so TestAnalyzeVectorsFresh can regenerate and
compare it.
"""

import argparse
import importlib.metadata
import json
import math

import scipy
import scipy.stats
import statsmodels
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest
from gbstats.models.statistics import ProportionStatistic

norm = scipy.stats.norm


def f(x):
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite reference value {x}")
    return x


def tau2_for_effect(alpha, power, mde):
    """The mixture variance tuned for detecting mde at power (one look, two-sided)."""
    r = -2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))
    c = math.sqrt((1 + r) / r * (-2 * math.log(alpha) + math.log1p(r)))
    k = c + norm.ppf(power)
    return r * mde * mde / (k * k), r


CASES = [
    # name, alpha, power, mde, split, (x_c, n_c), (x_t, n_t)
    ("brief example", 0.05, None, None, [0.5, 0.5], (810, 1000), (850, 1000)),
    ("clear lift", 0.05, 0.8, 0.03, [0.5, 0.5], (4000, 5000), (4180, 5000)),
    ("no difference", 0.05, 0.8, 0.03, [50, 50], (8030, 10000), (8010, 10000)),
    ("treatment worse", 0.05, 0.9, 0.02, [0.5, 0.5], (9200, 11000), (8900, 11000)),
    ("90/10", 0.05, 0.8, 0.03, [90, 10], (36000, 45000), (4100, 5000)),
    ("60/40 under 50/50", 0.05, 0.8, 0.03, [0.5, 0.5], (4800, 6000), (3440, 4000)),
    ("small", 0.1, 0.8, 0.1, [0.5, 0.5], (21, 30), (33, 40)),
    ("near one", 0.01, 0.8, 0.005, [0.5, 0.5], (995, 1000), (999, 1000)),
    ("alpha 0.01", 0.01, 0.8, 0.05, [1, 1], (700, 1000), (760, 1000)),
]


def case(name, alpha, power, mde, split, control, treatment):
    xc, nc = control
    xt, nt = treatment
    inp = {"alpha": alpha, "expected_split": split,
           "arms": [{"name": "control", "n": nc, "successes": xc}, {"name": "treatment", "n": nt, "successes": xt}]}
    p_eff, mde_eff = (0.8 if power is None else power), (0.03 if mde is None else mde)
    if power is not None:
        inp["power"] = power
    if mde is not None:
        inp["mde"] = mde

    _, pz = proportions_ztest([xt, xc], [nt, nc])
    lo, hi = confint_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff", alpha=alpha)

    total = nc + nt
    expected = [total * w / sum(split) for w in split]
    srm = scipy.stats.chisquare([nc, nt], f_exp=expected)

    tau2, r = tau2_for_effect(alpha, p_eff, mde_eff)
    pc, pt = xc / nc, xt / nt
    v = pc * (1 - pc) / nc + pt * (1 - pt) / nt
    n_star = r * total * v / tau2
    seq = SequentialTwoSidedTTest(ProportionStatistic(sum=xc, n=nc), ProportionStatistic(sum=xt, n=nt),
                                  SequentialConfig(difference_type="absolute", alpha=alpha, sequential_tuning_parameter=n_star))
    slo, shi = seq.confidence_interval
    return {"name": name, "input": inp, "want": {
        "z_test": {"p_value": f(pz), "ci_low": f(lo), "ci_high": f(hi)},
        "srm": {"p_value": f(srm.pvalue)},
        "sequential": {"p_value": f(seq.p_value), "ci_low": f(slo), "ci_high": f(shi), "tau2": f(tau2)},
    }}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    doc = {
        "versions": {m: importlib.metadata.version(m) for m in ("scipy", "statsmodels", "gbstats")},
        "cases": [case(*c) for c in CASES],
    }
    with open(args.out, "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
