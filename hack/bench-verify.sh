#!/usr/bin/env bash
# `make bench-verify`: wall time of a warm `make verify` (tools already built),
# RUNS times (default 3), with the median. The cold tool build is measured by
# hack/tools.sh itself (it prints the elapsed time while building).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
hack/tools.sh kubebuilder-assets >/dev/null # warm up: build the tools if missing
go build -o /dev/null ./cmd/platformctl      # and the Go build cache
times=()
for i in $(seq 1 "$runs"); do
  start=$(date +%s.%N)
  hack/verify.sh >/dev/null
  end=$(date +%s.%N)
  t=$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')
  times+=("$t")
  printf 'run %d: %.1f s\n' "$i" "$t"
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
printf 'warm make verify: median %.1f s over %d runs (target: at most 60 s on 2 cores)\n' "$median" "$runs"
