package abtest

import (
	"errors"
	"fmt"
	"time"

	"github.com/ml-platform/platform/internal/stats"
)

// Point is the accuracy test as it stood at one look: what the report's
// table and plot show of how the always-valid p-value and interval moved.
type Point struct {
	At       time.Time `json:"at,omitzero"`
	Look     int       `json:"look"` // 1-based
	Feedback [2]int64  `json:"feedback"`
	Diff     float64   `json:"diff"`    // treatment minus control at this look
	PValue   float64   `json:"p_value"` // always-valid, up to this look
	Interval           // always-valid, up to this look
	Verdict  Verdict   `json:"verdict"`
}

// History is Decide at every look in turn: how the evidence and the verdict
// moved. Looks without an accuracy estimate yet are left out.
func History(d Design, looks []Look, o Options) ([]Point, error) {
	a, err := NewAnalyzer(d)
	if err != nil {
		return nil, err
	}
	var out []Point
	for i := range looks {
		l := looks[i]
		if l.Control.Feedback == 0 || l.Treatment.Feedback == 0 {
			continue
		}
		opts := Options{MaxDurationReached: o.MaxDurationReached && i == len(looks)-1}
		r, err := a.Decide(looks[:i+1], opts)
		if err != nil {
			return nil, fmt.Errorf("look %d: %w", i+1, err)
		}
		if r.Sequential == nil {
			continue
		}
		e, err := stats.DiffOfProportions(stats.Proportion{Successes: l.Treatment.Correct, Trials: l.Treatment.Feedback},
			stats.Proportion{Successes: l.Control.Correct, Trials: l.Control.Feedback})
		if errors.Is(err, stats.ErrNoVariance) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Point{At: l.At, Look: i + 1, Feedback: [2]int64{l.Control.Feedback, l.Treatment.Feedback},
			Diff: e.Diff, PValue: r.Sequential.PValue, Interval: r.Sequential.Interval, Verdict: r.Verdict})
	}
	return out, nil
}
