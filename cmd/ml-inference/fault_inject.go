//go:build faultinject

// This file exists only in test builds (go build -tags faultinject): it gives
// the binary a fault switch, PUT /debug/fault?error_rate=R&latency=D on the
// --debug-addr listener, that fails that fraction of inference requests with
// a 500 and delays every one by D (internal/fault). test/slolive uses it to
// prove the SLO alerts fire, test/delivery to prove canaries are aborted. A
// binary built without the tag contains none of this.

package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/ml-platform/platform/internal/fault"
)

func init() {
	faultHook = func(debug *http.ServeMux, log *slog.Logger) func() (time.Duration, bool) {
		in := fault.New()
		debug.Handle(fault.Path, in.Handler())
		log.Warn("TEST BUILD: fault injection compiled in (-tags faultinject); PUT " + fault.Path + "?error_rate=R&latency=D on -debug-addr fails that share of inference requests and delays each by D. Never deploy this binary.")
		return in.Decide
	}
}
