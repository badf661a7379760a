// Command platformctl is the operator's CLI: one binary for the platform's
// jobs; run.go lists its subcommands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Set at build time with -ldflags "-X main.version=... -X main.revision=..."
// (the Makefile and the image build do).
var (
	version  = "dev"
	revision = "unknown"
)

func main() {
	// controller-runtime (the API server client and envtest under verify)
	// logs through a global logger; platformctl reports what matters itself.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "platformctl: %v\n", err)
		os.Exit(1)
	}
}
