package mlflow

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// The entities below mirror MLflow's protobuf messages (mlflow/protos/
// service.proto, model_registry.proto, webhooks.proto, mlflow_artifacts.proto
// of MLflow 3.17.2) as its REST API writes them in JSON, keeping the fields
// the model lifecycle uses.

// UnixMillis is a time as MLflow sends it: milliseconds since the Unix
// epoch, 0 when unset.
type UnixMillis int64

// Time converts m; 0 gives the zero time.
func (m UnixMillis) Time() time.Time {
	if m == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(m))
}

// Millis converts t; the zero time gives 0.
func Millis(t time.Time) UnixMillis {
	if t.IsZero() {
		return 0
	}
	return UnixMillis(t.UnixMilli())
}

// KeyValues is one of MLflow's repeated {key, value} messages (tags of an
// experiment, run, registered model or model version; a run's params) as a
// map: a key appears at most once on one entity.
type KeyValues map[string]string

type keyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// MarshalJSON writes the list MLflow expects, sorted by key.
func (kv KeyValues) MarshalJSON() ([]byte, error) {
	return json.Marshal(kv.list())
}

func (kv KeyValues) list() []keyValue {
	out := make([]keyValue, 0, len(kv))
	for k, v := range kv {
		out = append(out, keyValue{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// UnmarshalJSON reads MLflow's list; a key given twice is an error.
func (kv *KeyValues) UnmarshalJSON(data []byte) error {
	var list []keyValue
	if err := json.Unmarshal(data, &list); err != nil {
		return err
	}
	if list == nil {
		*kv = nil
		return nil
	}
	m := make(KeyValues, len(list))
	for _, e := range list {
		if _, dup := m[e.Key]; dup {
			return fmt.Errorf("key %q appears twice", e.Key)
		}
		m[e.Key] = e.Value
	}
	*kv = m
	return nil
}

// Experiment groups runs.
type Experiment struct {
	ID               string     `json:"experiment_id"`
	Name             string     `json:"name"`
	ArtifactLocation string     `json:"artifact_location"` // mlflow-artifacts:/<id> with --serve-artifacts
	LifecycleStage   string     `json:"lifecycle_stage"`   // active or deleted
	CreationTime     UnixMillis `json:"creation_time"`
	LastUpdateTime   UnixMillis `json:"last_update_time"`
	Tags             KeyValues  `json:"tags"`
}

// RunStatus is a run's state (service.proto RunStatus).
type RunStatus string

// The run states.
const (
	RunRunning   RunStatus = "RUNNING"
	RunScheduled RunStatus = "SCHEDULED"
	RunFinished  RunStatus = "FINISHED"
	RunFailed    RunStatus = "FAILED"
	RunKilled    RunStatus = "KILLED"
)

func (s RunStatus) valid() bool {
	switch s {
	case RunRunning, RunScheduled, RunFinished, RunFailed, RunKilled:
		return true
	}
	return false
}

// Run is one training or evaluation run.
type Run struct {
	Info RunInfo `json:"info"`
	Data RunData `json:"data"`
}

// RunInfo is a run's metadata.
type RunInfo struct {
	ID             string     `json:"run_id"`
	Name           string     `json:"run_name"`
	ExperimentID   string     `json:"experiment_id"`
	UserID         string     `json:"user_id"`
	Status         RunStatus  `json:"status"`
	StartTime      UnixMillis `json:"start_time"`
	EndTime        UnixMillis `json:"end_time"`
	ArtifactURI    string     `json:"artifact_uri"` // mlflow-artifacts:/<experiment>/<run>/artifacts
	LifecycleStage string     `json:"lifecycle_stage"`
}

// RunData is what a run logged. Metrics holds the latest value of each key.
type RunData struct {
	Metrics []Metric  `json:"metrics"`
	Params  KeyValues `json:"params"`
	Tags    KeyValues `json:"tags"`
}

// Metric is one value of a metric.
type Metric struct {
	Key       string     `json:"key"`
	Value     float64    `json:"value"`
	Timestamp UnixMillis `json:"timestamp"`
	Step      int64      `json:"step"`
}

// RegisteredModel is a named model in the registry.
type RegisteredModel struct {
	Name                 string         `json:"name"`
	CreationTimestamp    UnixMillis     `json:"creation_timestamp"`
	LastUpdatedTimestamp UnixMillis     `json:"last_updated_timestamp"`
	UserID               string         `json:"user_id"`
	Description          string         `json:"description"`
	LatestVersions       []ModelVersion `json:"latest_versions"`
	Tags                 KeyValues      `json:"tags"`
	Aliases              []ModelAlias   `json:"aliases"`
}

// AliasVersion returns the version that alias points to.
func (m RegisteredModel) AliasVersion(alias string) (string, bool) {
	for _, a := range m.Aliases {
		if a.Alias == alias {
			return a.Version, true
		}
	}
	return "", false
}

// ModelAlias is a named, movable pointer to one version of a registered
// model (MLflow's replacement for the deprecated stages).
type ModelAlias struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

// ModelVersionStatus is a model version's registration state.
type ModelVersionStatus string

// The registration states.
const (
	VersionPendingRegistration ModelVersionStatus = "PENDING_REGISTRATION"
	VersionFailedRegistration  ModelVersionStatus = "FAILED_REGISTRATION"
	VersionReady               ModelVersionStatus = "READY"
)

// ModelVersion is one version of a registered model. Version is a decimal
// string, as MLflow sends it ("1", "2", ...).
type ModelVersion struct {
	Name                 string             `json:"name"`
	Version              string             `json:"version"`
	CreationTimestamp    UnixMillis         `json:"creation_timestamp"`
	LastUpdatedTimestamp UnixMillis         `json:"last_updated_timestamp"`
	UserID               string             `json:"user_id"`
	Description          string             `json:"description"`
	Source               string             `json:"source"` // where its files are, e.g. the run's mlflow-artifacts:/ URI
	RunID                string             `json:"run_id"`
	Status               ModelVersionStatus `json:"status"`
	StatusMessage        string             `json:"status_message"`
	Tags                 KeyValues          `json:"tags"`
	RunLink              string             `json:"run_link"`
	Aliases              []string           `json:"aliases"`
}

// FileInfo is one entry of an artifact listing. Path is relative to the
// artifact URI that was listed.
type FileInfo struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize int64  `json:"file_size"`
}
