#!/usr/bin/env bash
# Create, pin and cache the project's Python virtualenvs, one per
# tools/python/<name>/requirements.txt (every package pinned with ==, the one
# place that names their versions).
#
#   hack/venv.sh NAME         create the venv if it is not cached; print its
#                             directory (the only thing on stdout)
#   hack/venv.sh list         the venvs this repository declares
#
# Nothing is installed outside the venv: no system pip, no user site. A venv
# lives outside the work tree, keyed by a hash of its requirements and of the
# Python that made it, so a fresh clone (CI) reuses a warm one and a change to
# a pin makes a new one:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/ml-platform/venv/<name>-<hash>/
# and bin/venv/<name> in the repository is a symlink to it. Runs may overlap:
# a lock per venv makes a second run wait for the first install.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/ml-platform/venv"
python="${PYTHON:-python3}"

die() {
  echo "hack/venv.sh: $*" >&2
  exit 1
}

[[ $# -eq 1 ]] || die "usage: hack/venv.sh NAME | list"
if [[ "$1" == list ]]; then
  for f in "$repo"/tools/python/*/requirements.txt; do
    basename "$(dirname "$f")"
  done
  exit 0
fi

name="$1"
req="$repo/tools/python/$name/requirements.txt"
[[ -f "$req" ]] || die "no tools/python/$name/requirements.txt (known: $(cd "$repo/tools/python" && ls | paste -sd' '))"
command -v "$python" >/dev/null || die "$python is required to create the $name virtualenv (apt-get install -y python3 python3-venv)"
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
  die "$python is $("$python" --version 2>&1); the $name virtualenv needs Python 3.10 or newer"
"$python" -c 'import venv, ensurepip' 2>/dev/null ||
  die "$python has no venv/ensurepip module (Debian: apt-get install -y python3-venv)"

# Every line that names a package must pin it exactly: a range would make two
# machines install different things from the same file.
if bad="$(grep -vE '^[[:space:]]*(#|$)' "$req" | grep -vE '^[][A-Za-z0-9_.,-]+==[^=;[:space:]]+([[:space:]]*;.*)?$')"; then
  die "tools/python/$name/requirements.txt: every requirement must be pinned with ==; these are not:
$bad"
fi

key="$( (cat "$req"; "$python" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-12)"
dir="$cache_root/$name-$key"

link() {
  [[ "$(readlink "$2" 2>/dev/null)" == "$1" ]] && return 0
  mkdir -p "$(dirname "$2")"
  ln -sfn "$1" "$2.tmp.$$"
  mv -Tf "$2.tmp.$$" "$2"
}

if [[ ! -f "$dir/.complete" ]]; then
  mkdir -p "$cache_root"
  exec {lock_fd}>"$cache_root/.$name.lock"
  if ! flock -n "$lock_fd"; then
    echo "hack/venv.sh: waiting for another install of the $name virtualenv..." >&2
    flock "$lock_fd"
  fi
  if [[ ! -f "$dir/.complete" ]]; then
    # A venv cannot be moved once made (its scripts name their own path), so
    # it is built in place; .complete marks one that finished. A half-made
    # one, from an interrupted run, is removed first.
    rm -rf "$dir"
    start="$(date +%s)"
    echo "hack/venv.sh: creating the $name virtualenv ($("$python" --version 2>&1)) in $dir ..." >&2
    "$python" -m venv "$dir" >&2
    PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONNOUSERSITE=1 \
      "$dir/bin/python" -m pip install --quiet --no-input --require-virtualenv -r "$req" >&2 ||
      { rm -rf "$dir"; die "pip install -r tools/python/$name/requirements.txt failed (see above)"; }
    touch "$dir/.complete"
    echo "hack/venv.sh: $name virtualenv ready in $(($(date +%s) - start))s" >&2
  fi
  exec {lock_fd}>&-
fi
link "$dir" "$repo/bin/venv/$name"
echo "$dir"
