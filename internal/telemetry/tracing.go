package telemetry

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// DefaultSampleRatio is the share of new traces kept when OTEL_TRACES_SAMPLER
// is unset: 10%, as the observability plan asks.
const DefaultSampleRatio = 0.1

// Propagator is W3C trace context plus baggage, in and out.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Tracing is a configured tracer provider and how to flush it.
type Tracing struct {
	Provider *sdktrace.TracerProvider
	// Exporting says whether spans leave the process (false: no exporter set).
	Exporting bool
}

// Shutdown flushes and stops the provider.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.Provider.Shutdown(ctx) }

// NewTracing builds a tracer provider from the standard variables:
//
//	OTEL_TRACES_EXPORTER          otlp | none (unset: otlp if an OTLP endpoint is set, else none)
//	OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT, _HEADERS, _TIMEOUT, ... (read by the OTLP exporter)
//	OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL  http/protobuf (default) | grpc
//	OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG (unset: parentbased_traceidratio 0.1)
//	OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
//
// extra options (an in-memory exporter in tests) are applied last.
func NewTracing(ctx context.Context, getenv func(string) string, serviceVersion string, extra ...sdktrace.TracerProviderOption) (*Tracing, error) {
	sampler, err := samplerFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	name := getenv("OTEL_SERVICE_NAME")
	if name == "" {
		name = "ml-inference"
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(name), semconv.ServiceVersion(serviceVersion)),
		resource.WithAttributes(resourceAttrsFromEnv(getenv)...),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(sampler), sdktrace.WithResource(res)}
	t := &Tracing{}
	exporter := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	if exporter == "" && (getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") {
		exporter = "otlp"
	}
	switch exporter {
	case "", "none":
	case "otlp":
		protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
		if protocol == "" {
			protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
		}
		var exp sdktrace.SpanExporter
		switch protocol {
		case "", "http/protobuf":
			exp, err = otlptracehttp.New(ctx)
		case "grpc":
			exp, err = otlptracegrpc.New(ctx)
		default:
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: supported are http/protobuf and grpc", protocol)
		}
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
		t.Exporting = true
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: supported are otlp and none", exporter)
	}
	t.Provider = sdktrace.NewTracerProvider(append(opts, extra...)...)
	return t, nil
}

func samplerFromEnv(getenv func(string) string) (sdktrace.Sampler, error) {
	name := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER"))
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := DefaultSampleRatio
	if name == "" {
		name = "parentbased_traceidratio"
		arg = ""
	}
	if arg != "" && strings.HasSuffix(name, "traceidratio") {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio from 0 to 1", arg)
		}
		ratio = r
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: unsupported sampler", name)
}

// resourceAttrsFromEnv parses OTEL_RESOURCE_ATTRIBUTES (key=value,...).
func resourceAttrsFromEnv(getenv func(string) string) []attribute.KeyValue {
	var out []attribute.KeyValue
	for pair := range strings.SplitSeq(getenv("OTEL_RESOURCE_ATTRIBUTES"), ",") {
		k, v, ok := strings.Cut(pair, "=")
		if k = strings.TrimSpace(k); ok && k != "" {
			out = append(out, attribute.String(k, strings.TrimSpace(v)))
		}
	}
	return out
}
