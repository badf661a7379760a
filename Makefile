# The verbs users expect. Each target is a thin wrapper over a Go command or a
# script under hack/.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)
GO       ?= go

.PHONY: run build test verify diff slo dashboards diagrams tools evaluate train bench bench-verify fuzz lint mlflow image cluster cluster-down clean help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: build ## serve on :8000 from ./models (flags: make run ARGS="--traffic v1=90,v2=10")
	./bin/ml-inference --models-dir models $(ARGS)

build: ## build bin/ml-inference and bin/platformctl
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ml-inference ./cmd/ml-inference
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/platformctl ./cmd/platformctl

test: ## everything CI checks: lint, unit/integration tests with the race detector, model metrics freshness
	hack/test.sh

verify: ## render every manifest, run the structural checks, validate on a real kube-apiserver
	hack/verify.sh

diff: ## what differs between two environments: make diff A=dev B=prod
	$(GO) run ./cmd/platformctl diff $(A) $(B)

slo: ## generate the SLO recording and alerting rules from config/slos (Sloth)
	$(GO) run ./cmd/platformctl slo generate

dashboards: ## generate the Grafana dashboards (JSON) from internal/dashboards (Grafana Foundation SDK)
	$(GO) run ./cmd/platformctl dashboards generate

diagrams: ## render docs/architecture/diagrams/*.d2 to SVG
	hack/diagrams.sh

tools: ## build and cache the pinned kube-apiserver and etcd
	hack/tools.sh kubebuilder-assets >/dev/null

lint: ## gofmt and go vet
	hack/lint.sh

evaluate: ## measure every model version on the evaluation set and record the figures in models/*/model.json
	$(GO) run ./cmd/platformctl model evaluate --write

train: ## retrain models/v3 from data/ with the committed configuration (flags: make train ARGS="--l2 3e-4")
	$(GO) run ./cmd/platformctl model train $(ARGS)

bench: ## Go benchmarks plus an HTTP load run against ml-inference and a bare net/http baseline
	hack/bench.sh

bench-verify: ## wall time of a warm make verify (median of 3)
	hack/bench-verify.sh

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	hack/fuzz.sh

mlflow: ## MLflow 3.17.2 (tracking, registry, artifacts) on localhost:5000, data in .mlflow/; Ctrl-C stops it
	hack/mlflow.sh

image: ## build the image without Docker: OCI layout bin/image/oci (amd64+arm64), bin/image/image.tar for kind, SBOM
	hack/image.sh

cluster: ## a local kind cluster running the whole platform from this checkout's image (needs Docker)
	hack/cluster.sh up

cluster-down: ## delete the local kind cluster
	hack/cluster.sh down

clean: ## remove build output
	rm -rf bin/
