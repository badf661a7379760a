package cputime

import (
	"testing"
	"time"
)

// TestProcessCountsWorkNotSleep: a busy loop advances the clock by about
// its duration; a sleep of the same length barely does.
func TestProcessCountsWorkNotSleep(t *testing.T) {
	const span = 50 * time.Millisecond
	start := Process()
	if start <= 0 {
		t.Fatalf("Process() = %v at start, want > 0", start)
	}
	for deadline := time.Now().Add(span); time.Now().Before(deadline); {
	}
	busy := Process() - start
	time.Sleep(span)
	slept := Process() - start - busy
	// A busy loop may be descheduled on a shared machine, so only a lower
	// bound of a fifth holds; the sleep must cost far less than the loop.
	if busy < span/5 {
		t.Errorf("a %v busy loop used %v of CPU", span, busy)
	}
	if slept > span/5 {
		t.Errorf("a %v sleep used %v of CPU", span, slept)
	}
}

func BenchmarkMeter(b *testing.B) {
	m := Start()
	for b.Loop() {
		Process()
	}
	m.Report(b)
}
