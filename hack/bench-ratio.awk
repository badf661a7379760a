# hack/bench.sh: v3's throughput against v2's through the whole handler,
# from BenchmarkHandlerModels in `go test -bench` output (one run, so the two
# shared the machine's load). Per text size it prints the median ns/op of
# each version over the -count repeats, the throughput ratio v3/v2
# (= v2's ns/op / v3's), and the same from cpu-ns/op (CPU the process spent,
# which the other load on a shared machine moves less). Exits 1 when the
# output holds no v2 and v3 pair.
/^BenchmarkHandlerModels\/[^ ]+\/v[0-9]+(-[0-9]+)?[ \t]/ {
  split($1, part, "/"); size = part[2]; version = part[3]; sub(/-[0-9]+$/, "", version)
  k = ++runs[size, version]; ns[size, version, k] = $3
  for (i = 4; i < NF; i++) if ($(i + 1) == "cpu-ns/op") cpu[size, version, k] = $i
  if (!(size in seen)) { seen[size] = 1; order[++sizes] = size }
}
function median(values, size, version,   k, a, i, j, t) {
  k = runs[size, version]
  for (i = 1; i <= k; i++) a[i] = values[size, version, i] + 0
  for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
END {
  pairs = 0
  for (s = 1; s <= sizes; s++) {
    size = order[s]
    if (!runs[size, "v2"] || !runs[size, "v3"]) continue
    pairs++
    v2 = median(ns, size, "v2"); v3 = median(ns, size, "v3")
    line = sprintf("%-9s v2 %8.0f ns/op  v3 %8.0f ns/op  v3/v2 throughput %.2fx", size ":", v2, v3, v2 / v3)
    c2 = median(cpu, size, "v2"); c3 = median(cpu, size, "v3")
    if (c2 > 0 && c3 > 0) line = line sprintf("  (cpu-ns/op v2 %.0f v3 %.0f: %.2fx)", c2, c3, c2 / c3)
    print line (runs[size, "v3"] > 1 ? sprintf("  median of %d", runs[size, "v3"]) : "")
  }
  if (pairs == 0) { print "bench-ratio: no BenchmarkHandlerModels v2 and v3 results in the output" > "/dev/stderr"; exit 1 }
}
