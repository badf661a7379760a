package judge

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/stats"
)

// look builds one look from per-bucket counts over bounds (0.005, 0.01, +Inf).
func testLook(at int, canary, stable [3]float64, cErr, sErr int64) Look {
	arm := func(counts [3]float64, errs int64) Counts {
		c := Counts{Errors: errs}
		cum := 0.0
		for i, le := range []float64{0.005, 0.01, math.Inf(1)} {
			cum += counts[i]
			c.Buckets = append(c.Buckets, stats.Bucket{UpperBound: le, CumulativeCount: cum})
		}
		c.Requests = int64(cum)
		c.LatencySum = cum * 0.006
		return c
	}
	return Look{At: time.Unix(int64(60*at), 0).UTC(), Canary: arm(canary, cErr), Stable: arm(stable, sErr)}
}

// TestInconsistentLookIsSkipped: a look whose cumulative histogram falls
// with the bound (a snapshot in which one bucket series is a scrape ahead of
// another) is skipped, and the answer says so; the other looks decide.
func TestInconsistentLookIsSkipped(t *testing.T) {
	l := Looks{Began: time.Unix(0, 0).UTC(), Looks: []Look{
		testLook(1, [3]float64{100, 100, 100}, [3]float64{1000, 1000, 1000}, 0, 1),
		testLook(2, [3]float64{200, 200, 200}, [3]float64{2000, 2000, 2000}, 0, 2),
		testLook(3, [3]float64{300, 300, 300}, [3]float64{3000, 3000, 3000}, 0, 3),
	}}
	// Look 2's stable le=0.01 count is below its le=0.005 count.
	l.Looks[1].Stable.Buckets[1].CumulativeCount = 1500
	m := evaluateLatency(l, 3, DefaultPolicy)
	if m.Verdict != Pass || m.Look != 3 || !strings.Contains(m.Reason, "1 looks skipped, the last: look 2") {
		t.Errorf("latency %s at look %d: %q; want a pass at look 3 that names the skipped look 2", m.Verdict, m.Look, m.Reason)
	}
	// Every look inconsistent: inconclusive, with the reason.
	for i := range l.Looks {
		l.Looks[i].Canary.Buckets[1].CumulativeCount = 1
	}
	if m := evaluateLatency(l, 3, DefaultPolicy); m.Verdict != Inconclusive || !strings.Contains(m.Reason, "no look with consistent latency histograms") {
		t.Errorf("latency %s: %q; want inconclusive for want of a consistent look", m.Verdict, m.Reason)
	}
}

// TestSharedBoundsOnly: arms with no bound in common but +Inf cannot be
// compared: inconclusive, not "no difference".
func TestSharedBoundsOnly(t *testing.T) {
	l := Looks{Began: time.Unix(0, 0).UTC(), Looks: []Look{testLook(1, [3]float64{100, 100, 100}, [3]float64{1000, 1000, 1000}, 0, 0)}}
	l.Looks[0].Canary.Buckets[0].UpperBound, l.Looks[0].Canary.Buckets[1].UpperBound = 0.004, 0.02
	if m := evaluateLatency(l, 1, DefaultPolicy); m.Verdict != Inconclusive || !strings.Contains(m.Reason, "share 1 bucket bounds") {
		t.Errorf("latency %s: %q; want inconclusive: the arms share only +Inf", m.Verdict, m.Reason)
	}
}
