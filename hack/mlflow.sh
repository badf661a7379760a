#!/usr/bin/env bash
# Run the pinned MLflow tracking server and model registry in the foreground:
# a SQLite backend store and proxied artifacts (--serve-artifacts) under one
# data directory, on loopback. `make mlflow` runs it for a user; the Go test
# harness (internal/mlflowtest) runs the same script, so both get the same
# flags and environment.
#
#   hack/mlflow.sh [--port N] [--data DIR]
#     --port  port on 127.0.0.1 (default 5000)
#     --data  data directory (default .mlflow/ in the repository, git-ignored):
#             DIR/mlflow.db, DIR/artifacts/, DIR/webhook-secret.key
#
# MLFLOW_VENV names the virtualenv; unset, hack/venv.sh mlflow makes (first
# run: 1.5 to 3 min) or finds it. Ctrl-C stops the server and every process
# it started: they share its process group, which gets the terminal's SIGINT.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port=5000
data="$repo/.mlflow"

die() {
  echo "hack/mlflow.sh: $*" >&2
  exit 2
}

while [[ $# -gt 0 ]]; do
  case "$1" in
  --port) [[ $# -ge 2 ]] || die "--port needs a value"; port="$2"; shift 2 ;;
  --data) [[ $# -ge 2 ]] || die "--data needs a value"; data="$2"; shift 2 ;;
  *) die "unknown argument $1 (usage: hack/mlflow.sh [--port N] [--data DIR])" ;;
  esac
done
[[ "$port" =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "--port $port: not a TCP port"

venv="${MLFLOW_VENV:-}"
if [[ -z "$venv" ]]; then
  venv="$("$repo/hack/venv.sh" mlflow)"
fi
[[ -x "$venv/bin/mlflow" ]] || die "MLFLOW_VENV=$venv has no bin/mlflow: create it with hack/venv.sh mlflow"

mkdir -p "$data/artifacts"
data="$(cd "$data" && pwd)"

# Webhook secrets are stored encrypted with this Fernet key (32 random bytes,
# URL-safe base64). Without a fixed key every server process makes its own,
# and a secret saved before a restart can no longer be read, so deliveries
# after a restart would fail. It lives with the data it decrypts.
key_file="$data/webhook-secret.key"
if [[ ! -s "$key_file" ]]; then
  (umask 077 && head -c 32 /dev/urandom | base64 | tr '+/' '-_' >"$key_file.tmp.$$" && mv "$key_file.tmp.$$" "$key_file")
fi
MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY="$(<"$key_file")"
export MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY

# No usage reports to the internet (there is none here, and a platform's
# registry should not phone home).
export MLFLOW_DISABLE_TELEMETRY=true
# The job runner (huey consumers for GenAI evaluation jobs) is not used by the
# model lifecycle. Off, the server is two processes (the CLI and uvicorn)
# instead of ten, and leaves no huey store behind in /dev/shm. Export
# MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true to have it.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
# Webhooks may call listeners on this machine over plain HTTP (the server only
# listens on loopback). MLflow's defaults allow https to public addresses only.
export MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https
export MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true
# MLflow caches each event's webhook list per process (60 s by default), and
# an event in that window after a webhook is created or deleted goes to the
# old list: it is lost, or sent to a deleted webhook. 0 reads the list from
# the store for every event, a query that SQLite answers at once.
export MLFLOW_WEBHOOK_CACHE_TTL=0

echo "hack/mlflow.sh: MLflow $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mlflow"))') on http://127.0.0.1:$port, data in $data" >&2
# exec: the server takes this process's place (and process group), so a
# signal to the group reaches it and everything it starts. One worker: one
# user or one test needs no more, and each uvicorn worker is another ~250 MB
# Python process.
exec "$venv/bin/mlflow" server \
  --host 127.0.0.1 \
  --port "$port" \
  --workers 1 \
  --backend-store-uri "sqlite:///$data/mlflow.db" \
  --serve-artifacts \
  --artifacts-destination "$data/artifacts"
