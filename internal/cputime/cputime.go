// Package cputime measures the CPU time a process spends, so that a
// benchmark on a shared machine can report what an operation costs next to
// its wall time: ns/op also counts the time other processes held the cores,
// cpu-ns/op only what this process spent on every thread (the benchmark's
// goroutine, the garbage collector, the runtime).
package cputime

import (
	"syscall"
	"testing"
	"time"
)

// Process returns the CPU time (user and system) the process has used.
// Linux accounts it exactly (from the scheduler's runtime, not sampled
// ticks).
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Meter measures one benchmark's CPU time: Start it just before the
// b.Loop loop and call Report after it.
type Meter struct{ start time.Duration }

// Start begins a measurement.
func Start() Meter { return Meter{Process()} }

// Report adds the CPU time since Start, per iteration, to b's results as
// "cpu-ns/op". It reports nothing when b ran no iteration or the clock
// could not be read.
func (m Meter) Report(b *testing.B) {
	if d := Process() - m.start; b.N > 0 && m.start > 0 && d >= 0 {
		b.ReportMetric(float64(d)/float64(b.N), "cpu-ns/op")
	}
}
