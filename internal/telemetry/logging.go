package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

type requestIDKey struct{}

// WithRequestID stores the request id for the logger to add to every line.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id stored in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// ParseLevel accepts debug, info, warn and error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return l, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// NewLogger writes one JSON object per line with time, level and msg, plus
// trace_id, span_id and request_id whenever the context carries them, so
// Loki lines join Tempo traces.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(newLineHandler(w, level))
}
