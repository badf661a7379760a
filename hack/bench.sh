#!/usr/bin/env bash
# `make bench`: Go micro-benchmarks (model Predict, full handler vs a bare
# handler, the whole handler with v3 against v2 (its throughput ratio printed by
# hack/bench-ratio.awk), /predict with and without feedback tokens, /feedback, the feedback
# token itself and the replay store's memory, telemetry on vs off) and an
# HTTP load run (ml-inference with
# telemetry on at 10% and 100% trace sampling and off, and a bare net/http
# baseline, in the same run). Figures and their reading are in
# docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
  echo "==> installing wrk (Debian package) for the HTTP load run"
  if [[ $(id -u) -eq 0 ]]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi
fi

echo "==> Go benchmarks"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench . -benchmem -count "${BENCH_COUNT:-1}" ./internal/model/ ./internal/server/ ./internal/feedback/ | tee "$out"

echo "==> v3 against v2 through the whole handler (BenchmarkHandlerModels, this run)"
awk -f hack/bench-ratio.awk "$out"

echo "==> start to ready with v1, v2 and v3: from the models directory, and from the MLflow cache with MLflow down"
MLFLOW_VENV="$(hack/venv.sh mlflow)" # a real MLflow fills the cache first
export MLFLOW_VENV
go test -run '^$' -bench 'BenchmarkStartToReady' -benchtime "${START_RUNS:-10}x" ./cmd/ml-inference/ | grep -E '^Benchmark|^ok'

echo "==> HTTP load: ml-inference (telemetry on at 10% and 100% traces, and off) vs bare net/http baseline"
make --no-print-directory build >/dev/null
go build -o bin/loadbench ./test/loadbench
bin/loadbench ${LOADBENCH_ARGS:-}
