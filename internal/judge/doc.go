// Package judge is the canary judge behind Argo Rollouts' web metric
// provider: it compares a canary's inference traffic with its stable's, read
// from VictoriaMetrics (the Prometheus HTTP API), and answers pass, fail or
// inconclusive with the figures that decided it.
//
// The judge is stateless. For one namespace and two rollouts-pod-template-hash
// values it reads the raw counters of both arms at a grid of instants
// (Grid, Backend.Fetch), rebuilds the cumulative counts of every look since
// the canary's series began (BuildLooks), and runs the tests over all of them
// (Evaluate):
//
//   - errors: the canary's 5xx rate against stable's, with stats.RateRatioTest
//     (exact and always valid: looked at every step, it fails a canary that
//     is no worse than stable by more than the margin with probability at
//     most Alpha/2);
//   - latency: the two latency histograms with stats.MannWhitney at each
//     look, failed only when the effect P(canary slower) exceeds a tolerance
//     and the test rejects at Alpha/2 split over the window's looks
//     (Bonferroni).
//
// A stable whose own 5xx rate is above a ceiling, no data and too little
// data are never a pass. docs/judge.md says what is computed, the defaults
// and why, and what the simulations measured.
//
// routes.go is the map of the HTTP API.
package judge
