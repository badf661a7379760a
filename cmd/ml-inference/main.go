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
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "ml-inference: %v\n", err)
		os.Exit(1)
	}
}
