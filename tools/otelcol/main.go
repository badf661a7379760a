// Command otelcol-platform is a minimal OpenTelemetry Collector distribution
// for the platform's tests: the OTLP receiver (gRPC and HTTP) and the file
// exporter (OTLP JSON, one line per batch) for test/tracing, and the
// components of the cluster's collector gateway except tail_sampling (the
// memory_limiter and batch processors, the otlp exporter, the health_check
// extension), so test/observability can run `validate` on its configuration.
// tail_sampling is not here: its v0.165.0 needs contrib modules the Go
// module proxy does not serve. It is what the
// OpenTelemetry Collector Builder (ocb) would generate for that component
// list, written by hand so the pin is one go.mod: hack/tools.sh builds it
// (`hack/tools.sh path otelcol`) and stamps main.version with the pinned
// go.opentelemetry.io/collector/otelcol version.
package main

import (
	"os"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

// version is stamped by hack/tools.sh (-X main.version=<otelcol version>).
var version = "dev"

func components() (otelcol.Factories, error) {
	var err error
	// otelcol requires a telemetry factory (the collector's own logs and
	// metrics); otelconftelemetry is the one ocb puts in every build.
	f := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}
	if f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory()); err != nil {
		return otelcol.Factories{}, err
	}
	if f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](fileexporter.NewFactory(), otlpexporter.NewFactory()); err != nil {
		return otelcol.Factories{}, err
	}
	if f.Processors, err = otelcol.MakeFactoryMap[processor.Factory](memorylimiterprocessor.NewFactory(), batchprocessor.NewFactory()); err != nil {
		return otelcol.Factories{}, err
	}
	if f.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](healthcheckextension.NewFactory()); err != nil {
		return otelcol.Factories{}, err
	}
	f.ReceiverModules = map[component.Type]string{otlpreceiver.NewFactory().Type(): "go.opentelemetry.io/collector/receiver/otlpreceiver"}
	f.ExporterModules = map[component.Type]string{
		fileexporter.NewFactory().Type(): "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter",
		otlpexporter.NewFactory().Type(): "go.opentelemetry.io/collector/exporter/otlpexporter",
	}
	f.ProcessorModules = map[component.Type]string{
		memorylimiterprocessor.NewFactory().Type(): "go.opentelemetry.io/collector/processor/memorylimiterprocessor",
		batchprocessor.NewFactory().Type():         "go.opentelemetry.io/collector/processor/batchprocessor",
	}
	f.ExtensionModules = map[component.Type]string{healthcheckextension.NewFactory().Type(): "github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension"}
	return f, nil
}

func main() {
	set := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol-platform",
			Description: "OpenTelemetry Collector for the platform's tests",
			Version:     version,
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				// --config=FILE (or file:FILE), yaml:<inline>, ${env:VAR}.
				ProviderFactories: []confmap.ProviderFactory{
					fileprovider.NewFactory(),
					envprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
				DefaultScheme: "env",
			},
		},
		ProviderModules: map[string]string{
			"file": "go.opentelemetry.io/collector/confmap/provider/fileprovider",
			"env":  "go.opentelemetry.io/collector/confmap/provider/envprovider",
			"yaml": "go.opentelemetry.io/collector/confmap/provider/yamlprovider",
		},
	}
	// Errors are printed by the command (cobra); do not print them twice.
	if err := otelcol.NewCommand(set).Execute(); err != nil {
		os.Exit(1)
	}
}
