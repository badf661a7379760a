"""Read a registered model back with MLflow's own Python client.

internal/mlflow's read-back test writes a model through the Go client, and
cmd/platformctl's through `platformctl model register` and `promote`; each
runs this script with the pinned MLflow's python and compares what it prints
with what it wrote: a check by code nobody on this project wrote.

    python readback.py TRACKING_URI MODEL_NAME ARTIFACT_PATH DEST_DIR [ALIAS]

prints one JSON object on stdout: the registered model (description, tags,
aliases), every version (source, run id, status, tags, aliases), the params,
metrics and tags of each version's run, the alias moves recorded in the
experiment MODEL_NAME.alias-moves (if there is one), and where it downloaded
ARTIFACT_PATH (relative to the newest version's source, or with ALIAS to the
source of the version ALIAS points at) below DEST_DIR. ARTIFACT_PATH "."
downloads the whole directory and adds its digest, computed here from the
definition in internal/model/digest.go: sha256 over the sha256sum-format
manifest of its files.
"""

import hashlib
import json
import os
import sys

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402


def main(argv):
    if len(argv) not in (5, 6):
        sys.exit(f"usage: {argv[0]} TRACKING_URI MODEL_NAME ARTIFACT_PATH DEST_DIR [ALIAS]")
    tracking_uri, name, artifact_path, dest = argv[1:5]
    alias = argv[5] if len(argv) == 6 else None
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    model = client.get_registered_model(name)
    # Search results carry no aliases (MLflow 3.17.2's SQL store fills them in
    # for get_model_version only), so each version is fetched.
    found = client.search_model_versions(f"name = '{name}'")
    versions = sorted(
        (client.get_model_version(name, v.version) for v in found), key=lambda v: int(v.version)
    )
    runs = {}
    for v in versions:
        if v.run_id and v.run_id not in runs:
            run = client.get_run(v.run_id)
            runs[v.run_id] = {
                "name": run.info.run_name,
                "experiment_id": run.info.experiment_id,
                "status": run.info.status,
                "start_time": run.info.start_time,
                "end_time": run.info.end_time,
                "artifact_uri": run.info.artifact_uri,
                "params": run.data.params,
                "metrics": run.data.metrics,
                # mlflow.* tags are MLflow's own (run name, user, source).
                "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
            }

    moves = []
    experiment = client.get_experiment_by_name(f"{name}.alias-moves")
    if experiment is not None:
        for run in client.search_runs([experiment.experiment_id], order_by=["attributes.end_time ASC"]):
            moves.append({"status": run.info.status, "params": run.data.params})

    source = versions[-1].source
    if alias is not None:
        source = client.get_model_version_by_alias(name, alias).source
    artifact = {"source": source, "path": artifact_path}
    if artifact_path == ".":
        artifact["local_path"] = mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=dest, tracking_uri=tracking_uri
        )
        artifact["digest"] = directory_digest(artifact["local_path"])
    else:
        artifact["local_path"] = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{source}/{artifact_path}", dst_path=dest, tracking_uri=tracking_uri
        )

    json.dump(
        {
            "mlflow_version": mlflow.__version__,
            "registered_model": {
                "name": model.name,
                "description": model.description or "",
                "tags": model.tags,
                "aliases": model.aliases,
            },
            "versions": [
                {
                    "version": v.version,
                    "source": v.source,
                    "run_id": v.run_id,
                    "status": v.status,
                    "description": v.description or "",
                    "tags": v.tags,
                    "aliases": sorted(v.aliases),
                }
                for v in versions
            ],
            "runs": runs,
            "moves": moves,
            "artifact": artifact,
        },
        sys.stdout,
        indent=2,
        sort_keys=True,
    )
    sys.stdout.write("\n")


def directory_digest(root):
    """The artifact digest of a directory, written from its definition."""
    lines = []
    for dirpath, _, filenames in os.walk(root):
        for filename in filenames:
            path = os.path.join(dirpath, filename)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            with open(path, "rb") as f:
                lines.append((rel.encode(), f"{hashlib.sha256(f.read()).hexdigest()}  {rel}\n"))
    manifest = "".join(line for _, line in sorted(lines)).encode()
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


if __name__ == "__main__":
    main(sys.argv)
