// Package stats is the platform's statistics: the tests behind the canary
// judge (Argo Rollouts analysis: canary against stable 5xx proportions and
// latency histograms, looked at every analysis interval) and the A/B
// experiment analyser (accuracy of two model versions from user feedback,
// with guardrails).
//
// It is pure: numbers in, numbers out; no I/O, no clocks, no Prometheus.
// Every function validates its input and returns an error wrapping
// ErrInvalidInput (or ErrNoVariance when the data cannot carry a test, such as
// no failures in either arm); none panics and none returns NaN.
//
// What it offers, and where each formula comes from (the doc comment of each
// function gives the equation):
//
//   - TwoProportionZTest: fixed-horizon z-test with the pooled SE and a Wald
//     interval (unpooled SE); as statsmodels proportions_ztest and
//     confint_proportions_2indep(method="wald").
//   - WelchTTest: Welch's t-test from summary statistics with the
//     Welch-Satterthwaite df; as scipy ttest_ind_from_stats(equal_var=False).
//   - PowerAnalysis: sample size, power and minimum detectable effect of the
//     two-sided normal test on a standardised effect (Cohen's h for
//     proportions, Cohen's d for means); as statsmodels NormalIndPower.
//   - MSPRT: the mixture sequential probability ratio test of Johari, Koomen,
//     Pekelis and Walsh ("Peeking at A/B tests", KDD 2017; "Always valid
//     inference", Operations Research 2022) with a normal mixing distribution:
//     always-valid p-values and confidence intervals that stay valid however
//     often they are looked at, a one-sided variant (half-normal mixture) for
//     "the canary is worse", and the sample size it needs.
//   - SampleRatioMismatch: Pearson's chi-square goodness of fit of the arm
//     counts against the configured split; as scipy.stats.chisquare.
//   - MannWhitney: the Mann-Whitney U test on two latency histograms that
//     share bucket bounds, with tie correction and continuity correction; as
//     scipy.stats.mannwhitneyu(method="asymptotic"). HistogramFromCumulative
//     turns Prometheus' cumulative (le, count) buckets into per-bucket counts.
//
// The Normal, Student's t and chi-square distributions are gonum's
// (gonum.org/v1/gonum/stat/distuv). testdata/vectors.json holds reference
// values from scipy, statsmodels and GrowthBook's gbstats, written by
// testdata/gen_vectors.py; the tests match them to 1e-9. docs/statistics.md
// says when the platform uses which test and what the simulations measured.
package stats
