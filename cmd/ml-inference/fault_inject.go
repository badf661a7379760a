//go:build faultinject

// This file exists only in test builds (go build -tags faultinject): it gives
// the binary a fault switch, PUT /debug/fault?error_rate=R on the
// --debug-addr listener, that fails that fraction of inference requests with
// a 500 (internal/fault). test/slolive uses it to prove the SLO alerts fire.
// A binary built without the tag contains none of this.

package main

import (
	"log/slog"
	"net/http"

	"github.com/ml-platform/platform/internal/fault"
)

func init() {
	faultHook = func(debug *http.ServeMux, log *slog.Logger) func() bool {
		in := fault.New()
		debug.Handle(fault.Path, in.Handler())
		log.Warn("TEST BUILD: fault injection compiled in (-tags faultinject); PUT " + fault.Path + "?error_rate=R on -debug-addr fails that share of inference requests. Never deploy this binary.")
		return in.Fail
	}
}
