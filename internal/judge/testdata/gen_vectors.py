#!/usr/bin/env python3
"""Write internal/judge/testdata/vectors.json: reference answers of the canary judge.

This is a second implementation of what package judge computes, written from
its documentation (docs/judge.md) with scipy, to check the Go glue around
internal/stats:

  looks         the cumulative counts of every look, rebuilt from the raw
                counter series a range query returns (per-series differences,
                counter resets, series that start or stop, gaps), summed per
                arm from the instant before the canary's first sample
  errors        the rate-ratio test's mixture ratio at each look (closed form
                with scipy.special.betaln and betainc), its running-minimum
                p-value, and the always-valid lower bound of the rate ratio
                (scipy.optimize.brentq on ln Λ(ρ) = ln(1/α), after checking
                on a grid that ln Λ falls as ρ rises)
  latency       scipy.stats.mannwhitneyu(alternative='greater',
                method='asymptotic', use_continuity=True) on each look's
                histograms expanded to samples (each bucket one value: ties),
                restricted to the bucket bounds both arms share; the effect
                U / (n_x n_y); the p-value times the window's looks (capped at
                1); mean latencies from the _sum counters
  verdicts      the decision rules of docs/judge.md: the first failing look,
                the stable ceiling, the minimum sample, the combination

The inputs are made here, with a seeded random.Random, in the shape the
Prometheus HTTP API answers a range query ({"metric": {...}, "values":
[[t, "v"], ...]}), so the Go test feeds them to the same functions the HTTP
handler calls.

Run it with the stats virtualenv (hack/venv.sh stats):

  "$(hack/venv.sh stats)/bin/python" internal/judge/testdata/gen_vectors.py \\
      --out internal/judge/testdata/vectors.json

The output is deterministic (fixed seeds, sorted keys, repr floats), so
TestVectorsFresh regenerates it and compares.
"""

import argparse
import importlib.metadata
import json
import math
import random
import sys

import numpy as np
import scipy
import scipy.optimize
import scipy.special
import scipy.stats

NS = "ml-inference-prod"
CANARY = "7c9d8b6f5"
STABLE = "58f4d9c7b"
HASH = "rollouts_pod_template_hash"

# ml-inference's buckets (internal/telemetry.LatencyBuckets) and +Inf.
LES = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2.5, 5, math.inf]
# Two of the inference endpoints: enough to sum over, few enough to keep the file small.
ENDPOINTS = [("/predict", 0.9), ("/v2/models/{name}/infer", 0.1)]

DEFAULT_POLICY = {
    "alpha": 0.05,
    "error_margin": 0.25,
    "latency_tolerance": 0.6,
    "min_requests": 200,
    "stable_error_ceiling": 0.01,
}


def le_label(le):
    return "+Inf" if math.isinf(le) else repr(float(le)) if le != int(le) else str(int(le))


# --- making inputs ----------------------------------------------------------


class Pod:
    """One ml-inference pod's counters, advanced one grid step at a time."""

    def __init__(self, rng, name, arm_hash, born, died=None, resets=(), rps=5.0,
                 error_rate=0.001, median=0.005, sigma=0.5, delay=0.0, history=0,
                 les=LES, gaps=(), client_errors=0.01):
        self.rng, self.name, self.hash = rng, name, arm_hash
        self.born, self.died, self.resets = born, died, set(resets)
        self.rps, self.error_rate = rps, error_rate
        self.median, self.sigma, self.delay = median, sigma, delay
        self.history, self.les, self.gaps = history, les, set(gaps)
        self.client_errors = client_errors
        self.reset_counters()

    def reset_counters(self):
        self.requests = {}  # (endpoint, status) -> count
        self.buckets = {}   # (endpoint, le) -> cumulative count
        self.sums = {}      # endpoint -> seconds
        for endpoint, _ in ENDPOINTS:
            # internal/telemetry creates the 5xx series of inference endpoints at 0.
            for status in ("500", "503"):
                self.requests[(endpoint, status)] = 0

    def latency(self):
        return self.delay + self.median * math.exp(self.sigma * self.rng.gauss(0, 1))

    def serve(self, n):
        for _ in range(n):
            u = self.rng.random()
            endpoint = ENDPOINTS[-1][0]
            for e, share in ENDPOINTS:
                if u < share:
                    endpoint = e
                    break
                u -= share
            v = self.rng.random()
            if v < self.error_rate:
                status = "500" if self.rng.random() < 0.7 else "503"
            elif v < self.error_rate + self.client_errors:
                status = "400"
            else:
                status = "200"
            key = (endpoint, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            lat = self.latency()
            for le in self.les:
                if lat <= le:
                    self.buckets[(endpoint, le)] = self.buckets.get((endpoint, le), 0) + 1
            for le in self.les:
                self.buckets.setdefault((endpoint, le), 0)
            self.sums[endpoint] = self.sums.get(endpoint, 0.0) + lat

    def labels(self, extra):
        m = {"__name__": None, "namespace": NS, "pod": self.name, HASH: self.hash, "version": "v2"}
        m.update(extra)
        return m


def noisy(rng, mean):
    """A whole number of requests around mean (a discretised normal)."""
    return max(0, int(round(rng.gauss(mean, math.sqrt(mean)))))


def make_series(rng, pods, points, step_s, t0_s):
    """The range-query answers: every pod's series at every grid instant it
    lives, as the Prometheus API returns them (no __name__ after
    last_over_time)."""
    out = {"requests": {}, "buckets": {}, "sums": {}}
    for pod in pods:
        if pod.history:
            pod.serve(pod.history)  # traffic before the grid: never counted
        for i in range(points):
            if i < pod.born or (pod.died is not None and i > pod.died):
                continue
            if i in pod.resets:
                pod.reset_counters()
            if i > pod.born or pod.born == 0:
                pod.serve(noisy(rng, pod.rps * step_s))
            elif pod.born > 0:
                # The interval in which the pod started: part of a step.
                pod.serve(noisy(rng, pod.rps * step_s / 2))
            if i in pod.gaps:
                continue
            t = t0_s + i * step_s

            def add(kind, extra, value):
                labels = pod.labels(extra)
                del labels["__name__"]
                key = (kind, tuple(sorted(labels.items())))
                s = out[kind].setdefault(key, {"metric": labels, "values": []})
                s["values"].append([t, value])

            for (endpoint, status), n in sorted(pod.requests.items()):
                add("requests", {"endpoint": endpoint, "status": status}, str(n))
            for (endpoint, le), n in sorted(pod.buckets.items()):
                add("buckets", {"endpoint": endpoint, "le": le_label(le)}, str(n))
            for endpoint, s in sorted(pod.sums.items()):
                add("sums", {"endpoint": endpoint}, repr(float(s)))
    return {k: [v for _, v in sorted(out[k].items())] for k in out}


# --- the reference implementation ------------------------------------------


def parse_le(s):
    return math.inf if s == "+Inf" else float(s)


PER_REQUEST = ("endpoint", "status", "version", "le")


def process_of(metric):
    return tuple(sorted((k, v) for k, v in metric.items() if k not in PER_REQUEST))


def index_of(t, start_s, step_s, points):
    i = (t - start_s) // step_s
    assert (t - start_s) % step_s == 0 and 0 <= i < points
    return i


def increments(values, resets, start_s, step_s, points):
    """Per-grid-instant increments of one counter series."""
    inc = [0.0] * points
    prev_i = prev = None
    for t, v in values:
        i = index_of(t, start_s, step_s, points)
        v = float(v)
        if prev is None:
            inc[i] = v if i > 0 else 0.0
        elif v < prev or any(resets[prev_i + 1:i + 1]):
            inc[i] = v
        else:
            inc[i] = v - prev
        prev_i, prev = i, v
    return inc


def build_looks(series, start_s, step_s, points):
    # A process restarted at instant i when one of its counters fell there.
    resets = {}
    for kind in ("requests", "buckets", "sums"):
        for s in series[kind]:
            r = resets.setdefault(process_of(s["metric"]), [False] * points)
            for (_, a), (t, b) in zip(s["values"], s["values"][1:]):
                if float(b) < float(a):
                    r[index_of(t, start_s, step_s, points)] = True
    arms = {}
    for arm in (CANARY, STABLE):
        arms[arm] = {"requests": [0.0] * points, "errors": [0.0] * points,
                     "sum": [0.0] * points, "buckets": {}}
    canary_first, last = None, -1
    for kind in ("requests", "buckets", "sums"):
        for s in series[kind]:
            if not s["values"]:
                continue
            inc = increments(s["values"], resets[process_of(s["metric"])], start_s, step_s, points)
            a = arms[s["metric"][HASH]]
            first = index_of(s["values"][0][0], start_s, step_s, points)
            if kind == "requests":
                for i in range(points):
                    a["requests"][i] += inc[i]
                    if int(s["metric"]["status"]) >= 500:
                        a["errors"][i] += inc[i]
                if s["metric"][HASH] == CANARY:
                    canary_first = first if canary_first is None else min(canary_first, first)
            else:
                if kind == "buckets":
                    into = a["buckets"].setdefault(parse_le(s["metric"]["le"]), [0.0] * points)
                else:
                    into = a["sum"]
                for i in range(points):
                    into[i] += inc[i]
            last = max(last, index_of(s["values"][-1][0], start_s, step_s, points))
    if canary_first is None:
        return None, []
    began = max(canary_first - 1, 0)

    def total(xs, i, j):
        return sum(xs[i + 1:j + 1])

    looks = []
    for i in range(began + 1, last + 1):
        look = {"at": start_s + i * step_s}
        for arm, key in ((CANARY, "canary"), (STABLE, "stable")):
            a = arms[arm]
            look[key] = {
                "requests": int(total(a["requests"], began, i)),
                "errors": int(total(a["errors"], began, i)),
                "latency_sum": total(a["sum"], began, i),
                "buckets": [[le_label(le), int(total(a["buckets"][le], began, i))]
                            for le in sorted(a["buckets"])],
            }
        looks.append(look)
    return start_s + began * step_s, looks


def log_lambda(x, y, nc, ns, rho):
    """ln Λ of the rate-ratio test (Beta(1, 1) mixture over q > q0)."""
    f = nc / (nc + ns)
    q0 = f * rho / (f * rho + 1 - f)
    a = b = 1.0
    return (scipy.special.betaln(a + x, b + y) - scipy.special.betaln(a, b)
            + math.log(scipy.special.betainc(b + y, a + x, 1 - q0))
            - math.log(scipy.special.betainc(b, a, 1 - q0))
            - x * math.log(q0) - y * math.log1p(-q0))


def lower_bound(x, y, nc, ns, alpha):
    target = -math.log(alpha)
    if log_lambda(x, y, nc, ns, 1.0) < target:
        return 0.0
    hi = 2.0
    while log_lambda(x, y, nc, ns, hi) >= target:
        hi *= 2
    grid = np.linspace(0.0, math.log(hi), 50)
    vals = [log_lambda(x, y, nc, ns, math.exp(g)) for g in grid]
    assert all(b <= a + 1e-12 for a, b in zip(vals, vals[1:])), "ln Λ must fall as ρ rises"
    root = scipy.optimize.brentq(lambda g: log_lambda(x, y, nc, ns, math.exp(g)) - target,
                                 0.0, math.log(hi), xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    return math.exp(root)


def errors_metric(looks, policy, ceiling_reason):
    alpha = policy["alpha"] / 2
    m = {"name": "errors", "verdict": "inconclusive", "p_value": 1.0, "alpha": alpha,
         "threshold": 1 + policy["error_margin"], "canary": None, "stable": None,
         "effect": None, "ci_low": None, "ci_high": None, "n_canary": 0, "n_stable": 0, "look": 0}
    if not looks:
        return m
    p, bound, decided, failed = 1.0, 0.0, None, False
    for k, look in enumerate(looks):
        c, s = look["canary"], look["stable"]
        if c["requests"] == 0 or s["requests"] == 0:
            continue
        ll = log_lambda(c["errors"], s["errors"], c["requests"], s["requests"], 1 + policy["error_margin"])
        p = min(p, min(1.0, math.exp(-ll)))
        bound = max(bound, lower_bound(c["errors"], s["errors"], c["requests"], s["requests"], alpha))
        decided = k
        if ll >= -math.log(alpha):
            failed = True
            break
    last = looks[-1]
    if decided is None:
        m["n_canary"], m["n_stable"] = last["canary"]["requests"], last["stable"]["requests"]
        return m
    c, s = looks[decided]["canary"], looks[decided]["stable"]
    m.update(look=decided + 1, n_canary=c["requests"], n_stable=s["requests"], p_value=p, ci_low=bound)
    rc, rs = c["errors"] / c["requests"], s["errors"] / s["requests"]
    m["canary"], m["stable"] = rc, rs
    if s["errors"] > 0:
        m["effect"] = rc / rs
    if failed:
        m["verdict"] = "fail"
    elif ceiling_reason:
        pass
    elif min(c["requests"], s["requests"]) < policy["min_requests"]:
        pass
    else:
        m["verdict"] = "pass"
    return m


def histogram(buckets, shared):
    cum = [n for le, n in buckets if parse_le(le) in shared]
    return [b - a for a, b in zip([0] + cum[:-1], cum)]


def latency_metric(looks, max_looks, policy, ceiling_reason):
    alpha = policy["alpha"] / 2
    m = {"name": "latency", "verdict": "inconclusive", "p_value": 1.0, "alpha": alpha,
         "threshold": policy["latency_tolerance"], "canary": None, "stable": None,
         "effect": None, "ci_low": None, "ci_high": None, "n_canary": 0, "n_stable": 0, "look": 0}
    if not looks:
        return m
    at = None
    for k, look in enumerate(looks):
        c, s = look["canary"], look["stable"]
        nc, ns = c["buckets"][-1][1] if c["buckets"] else 0, s["buckets"][-1][1] if s["buckets"] else 0
        if nc == 0 or ns == 0:
            continue
        shared = sorted({parse_le(le) for le, _ in c["buckets"]} & {parse_le(le) for le, _ in s["buckets"]})
        assert len(shared) >= 2 and math.isinf(shared[-1])
        hx, hy = histogram(c["buckets"], set(shared)), histogram(s["buckets"], set(shared))
        if min(hx + hy) < 0:
            continue  # a non-monotone snapshot: the look is skipped
        if sum(1 for a, b in zip(hx, hy) if a + b > 0) < 2:
            effect, raw = 0.5, 1.0
        else:
            x = np.repeat(np.arange(len(hx), dtype=float), hx)
            y = np.repeat(np.arange(len(hy), dtype=float), hy)
            r = scipy.stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic", use_continuity=True)
            effect, raw = float(r.statistic) / (nc * ns), float(r.pvalue)
        at = (k, effect, min(1.0, raw * max_looks), nc, ns)
        if nc >= policy["min_requests"] and effect > policy["latency_tolerance"] and at[2] <= alpha:
            break
    last = looks[-1]
    if at is None:
        m["n_canary"] = last["canary"]["buckets"][-1][1] if last["canary"]["buckets"] else 0
        m["n_stable"] = last["stable"]["buckets"][-1][1] if last["stable"]["buckets"] else 0
        return m
    k, effect, p, nc, ns = at
    c, s = looks[k]["canary"], looks[k]["stable"]
    m.update(look=k + 1, n_canary=nc, n_stable=ns, effect=effect, p_value=p,
             canary=c["latency_sum"] / nc, stable=s["latency_sum"] / ns)
    failed = nc >= policy["min_requests"] and effect > policy["latency_tolerance"] and p <= alpha
    if ceiling_reason:
        pass
    elif failed:
        m["verdict"] = "fail"
    elif min(nc, ns) < policy["min_requests"]:
        pass
    else:
        m["verdict"] = "pass"
    return m


def judge(series, now_ms, window_s, step_s, policy):
    step_ms = step_s * 1000
    end_ms = now_ms // step_ms * step_ms
    max_looks = window_s // step_s
    start_s = end_ms // 1000 - max_looks * step_s
    points = max_looks + 1
    began, looks = build_looks(series, start_s, step_s, points)
    ceiling = False
    if looks:
        s = looks[-1]["stable"]
        ceiling = s["requests"] > 0 and s["errors"] / s["requests"] > policy["stable_error_ceiling"]
    metrics = [errors_metric(looks, policy, ceiling), latency_metric(looks, max_looks, policy, ceiling)]
    verdicts = [m["verdict"] for m in metrics]
    verdict = "fail" if "fail" in verdicts else "inconclusive" if "inconclusive" in verdicts else "pass"
    return {
        "began": began,
        "looks": looks,
        "result": {"verdict": verdict, "looks": len(looks), "max_looks": max_looks, "metrics": metrics,
                   "began": began if looks else None, "last_look": looks[-1]["at"] if looks else None},
    }


# --- the cases --------------------------------------------------------------

NOW_MS = 1_700_000_000_000 + 37_123  # not on the grid: the judge aligns it
STEP_S = 60


def case(name, seed, pods_of, window_s=600, step_s=STEP_S, policy=None, now_ms=NOW_MS, drop=None):
    rng = random.Random(seed)
    policy = dict(DEFAULT_POLICY, **(policy or {}))
    points = window_s // step_s + 1
    start_s = (now_ms // (step_s * 1000) * step_s * 1000) // 1000 - (window_s // step_s) * step_s
    series = make_series(rng, pods_of(rng), points, step_s, start_s)
    if drop:
        series = drop(series)
    want = judge(series, now_ms, window_s, step_s, policy)
    return {
        "name": name,
        "request": {"namespace": NS, "canary": CANARY, "stable": STABLE, "window_s": window_s, "step_s": step_s},
        "now_ms": now_ms,
        "policy": policy,
        "series": series,
        "want": want,
    }


def stable_pods(rng, n=1, rps=45.0, **kw):
    return [Pod(rng, f"ml-inference-{STABLE}-{i}", STABLE, born=0, rps=rps, history=300, **kw) for i in range(n)]


def canary_pods(rng, born=3, n=1, rps=5.0, **kw):
    return [Pod(rng, f"ml-inference-{CANARY}-{i}", CANARY, born=born, rps=rps, **kw) for i in range(n)]


def cases():
    out = []
    # A healthy canary (10% of 50 req/s) and its stable: pass.
    out.append(case("a/a", 1, lambda r: stable_pods(r) + canary_pods(r)))
    # 3% 5xx against 0.1%: errors fail.
    out.append(case("canary 5xx 3%", 2, lambda r: stable_pods(r) + canary_pods(r, error_rate=0.03)))
    # +50 ms on a ~5 ms baseline, no errors: latency fails, errors pass.
    out.append(case("canary +50ms", 3, lambda r: stable_pods(r, error_rate=0) + canary_pods(r, error_rate=0, delay=0.05)))
    # A failing stable (5% 5xx) and a canary as bad: inconclusive, never pass.
    out.append(case("stable failing", 4, lambda r: stable_pods(r, error_rate=0.05) + canary_pods(r, error_rate=0.05)))
    # Too little canary traffic: inconclusive.
    out.append(case("few canary requests", 5, lambda r: stable_pods(r, rps=2) + canary_pods(r, rps=0.2)))
    # Nearly all traffic on the canary (a late weight step): too few stable
    # requests to compare with, inconclusive.
    out.append(case("little stable traffic", 19, lambda r: stable_pods(r, rps=0.2) + canary_pods(r, rps=10)))
    # Half the canary's requests fail, at low traffic: errors fail below the minimum sample.
    out.append(case("early 5xx fail", 6, lambda r: stable_pods(r, rps=2) + canary_pods(r, rps=0.3, error_rate=0.5)))
    # Pods restart (counter resets), start and stop, and samples go missing.
    out.append(case("resets, new and gone pods, gaps", 7, lambda r: [
        Pod(r, "s-0", STABLE, born=0, rps=10, history=500, resets=(5,), gaps=(3,)),
        Pod(r, "s-1", STABLE, born=0, rps=10, history=500, died=6),
        Pod(r, "s-2", STABLE, born=6, rps=10),
        Pod(r, "s-3", STABLE, born=0, rps=15, history=800, gaps=(7, 8)),
        Pod(r, "c-0", CANARY, born=2, rps=3, resets=(6,)),
        Pod(r, "c-1", CANARY, born=5, rps=3, gaps=(8,)),
    ]))
    # The canary is older than the window: its counts start at the grid's start.
    out.append(case("canary older than the window", 8, lambda r: stable_pods(r) + canary_pods(r, born=0, history=400)))
    # No 5xx at all: the rate ratio is undefined (null), the canary passes.
    out.append(case("no 5xx anywhere", 9, lambda r: stable_pods(r, error_rate=0) + canary_pods(r, error_rate=0)))
    # Every latency in one bucket: no difference at the histogram's resolution.
    out.append(case("one latency bucket", 10, lambda r: stable_pods(r, median=0.0015, sigma=0.01, error_rate=0)
                    + canary_pods(r, median=0.0015, sigma=0.01, error_rate=0)))
    # The canary exports finer buckets: compared on the bounds both have.
    finer = sorted(LES + [0.0075, 0.015])
    out.append(case("canary with other buckets", 11, lambda r: stable_pods(r) + canary_pods(r, les=finer, delay=0.01)))
    # No canary series at all: inconclusive, no look.
    out.append(case("no canary", 12, lambda r: stable_pods(r)))
    # The canary's first sample is at the grid's last instant: no look yet.
    # The canary's first sample is at the grid's last instant: one look, on
    # the requests it served before that sample.
    out.append(case("canary one look old", 13, lambda r: stable_pods(r) + canary_pods(r, born=10)))
    # The canary is older than the window but has no sample after its first
    # instant: no look.
    out.append(case("no sample after the start", 18, lambda r: stable_pods(r, died=0) + canary_pods(r, born=0, died=0, history=50)))
    # Large effect on few observations: not significant after Bonferroni, so no fail.
    out.append(case("slower but not significant", 14,
                    lambda r: stable_pods(r, rps=2, error_rate=0) + canary_pods(r, rps=0.03, error_rate=0, median=0.0075),
                    policy={"min_requests": 10}))
    # Margin 0 and a tight ceiling; a longer window with a finer step.
    out.append(case("margin 0, 30m at 30s", 15, lambda r: stable_pods(r) + canary_pods(r, born=12, error_rate=0.004),
                    window_s=900, step_s=30, policy={"error_margin": 0, "stable_error_ceiling": 0.005}))
    # Margin 1 (twice stable's rate tolerated) on a moderately worse canary.
    out.append(case("margin 1", 16, lambda r: stable_pods(r, error_rate=0.004) + canary_pods(r, error_rate=0.01),
                    policy={"error_margin": 1}))
    # Stable's latency series are missing: latency inconclusive, errors judged.
    out.append(case("no stable latency", 17, lambda r: stable_pods(r) + canary_pods(r),
                    drop=lambda s: dict(s, buckets=[x for x in s["buckets"] if x["metric"][HASH] != STABLE],
                                        sums=[x for x in s["sums"] if x["metric"][HASH] != STABLE])))
    return out


def bound_cases():
    """The always-valid lower bound of the rate ratio on its own."""
    rng = random.Random(99)
    out = []
    for alpha in (0.025, 0.05, 0.001):
        for x, y, nc, ns in ((4, 3, 300, 2700), (13, 6, 600, 5400), (1, 0, 10, 90), (30, 0, 300, 2700),
                             (200, 150, 5000, 45000), (3, 40, 300, 2700), (0, 5, 300, 2700), (50, 1, 100, 100)):
            out.append({"x": x, "y": y, "n_canary": nc, "n_stable": ns, "alpha": alpha,
                        "bound": lower_bound(x, y, nc, ns, alpha)})
    for _ in range(12):
        nc = rng.randint(10, 20000)
        ns = rng.randint(10, 100000)
        x = rng.randint(1, max(1, nc // 10))
        y = rng.randint(0, max(0, ns // 200))
        alpha = rng.choice((0.025, 0.01, 0.05))
        out.append({"x": x, "y": y, "n_canary": nc, "n_stable": ns, "alpha": alpha,
                    "bound": lower_bound(x, y, nc, ns, alpha)})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    doc = {
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__},
        "cases": cases(),
        "rate_ratio_bounds": bound_cases(),
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"), sort_keys=True, allow_nan=False)
        f.write("\n")


if __name__ == "__main__":
    main()
