// Command ml-inference serves sentiment models over HTTP: the seed API, the
// Open Inference Protocol v2, health, readiness and Prometheus metrics.
//
// main only wires the process to run; everything is testable through run.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// defaultGCPercent trades memory for CPU: at Go's default of 100 the
// collector ran often enough to cost about a tenth of throughput under load,
// while RSS stayed near half its 40 MiB budget. GOGC in the environment
// still wins. docs/performance.md has the measurements.
const defaultGCPercent = 200

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "ml-inference: %v\n", err)
		os.Exit(1)
	}
}
