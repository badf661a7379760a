#!/usr/bin/env bash
# Render every docs/architecture/diagrams/*.d2 to an .svg next to it.
#
# The D2 compiler is pinned in tools/d2/go.mod and built once per version into
# the user cache (outside the work tree, so a fresh clone or CI reuses a warm
# build). SVG output needs no browser: D2's layout engines run in-process.
#
#   hack/diagrams.sh            render all diagrams
#   hack/diagrams.sh FILE.d2... render only these
#   D2_LAYOUT=elk hack/diagrams.sh   another layout engine (default dagre)
set -euo pipefail
cd "$(dirname "$0")/.."

D2_VERSION=v0.7.2 # keep in step with tools/d2/go.mod
if ! grep -q "oss.terrastruct.com/d2 ${D2_VERSION}" tools/d2/go.mod; then
  echo "hack/diagrams.sh: D2_VERSION ${D2_VERSION} does not match tools/d2/go.mod" >&2
  exit 1
fi
bin_dir="${XDG_CACHE_HOME:-$HOME/.cache}/ml-platform/tools/d2/${D2_VERSION}"
d2="${bin_dir}/d2"

if [[ ! -x "$d2" ]]; then
  echo "==> building d2 ${D2_VERSION} into ${bin_dir} (first run only; a few minutes on 2 cores)"
  mkdir -p "$bin_dir"
  # Build to a temporary name and rename, so an interrupted build never leaves
  # a half-written binary that later runs would trust.
  GOWORK=off CGO_ENABLED=0 go -C tools/d2 build -trimpath -o "${d2}.tmp.$$" oss.terrastruct.com/d2
  mv -f "${d2}.tmp.$$" "$d2"
fi

if [[ $# -gt 0 ]]; then
  files=("$@")
else
  shopt -s nullglob
  files=(docs/architecture/diagrams/*.d2)
fi
if [[ ${#files[@]} -eq 0 ]]; then
  echo "hack/diagrams.sh: no .d2 files to render" >&2
  exit 1
fi

for src in "${files[@]}"; do
  out="${src%.d2}.svg"
  echo "==> ${src} -> ${out}"
  # --omit-version keeps the SVG byte-identical across re-renders of the same
  # source, so a diff only shows when the diagram changed.
  "$d2" --layout="${D2_LAYOUT:-dagre}" --theme=0 --pad=40 --omit-version "$src" "$out"
  chmod 0644 "$out" # d2 writes 0600
done
