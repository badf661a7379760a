package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/ml-platform/platform/internal/generate"
)

// MetadataFile is the name of the metadata file in an artifact directory.
const MetadataFile = "model.json"

// Version is one loaded model version: its metadata, the model itself and the
// directory it came from.
type Version struct {
	Meta  Metadata
	Model Model
	Dir   string
}

// constructor builds a model from its artifact directory and params.
type constructor func(dir string, params json.RawMessage) (Model, error)

var kinds = map[string]constructor{}

func registerKind(kind string, c constructor) {
	if _, dup := kinds[kind]; dup {
		panic("model kind registered twice: " + kind)
	}
	kinds[kind] = c
}

// Kinds lists the artifact kinds this build can load.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// versionPattern keeps versions usable in URLs, headers and metric labels.
var versionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidVersion reports whether v is an acceptable version name.
func ValidVersion(v string) bool { return versionPattern.MatchString(v) }

// LoadArtifact reads dir/model.json and builds the model it describes. Errors
// name the file and the field at fault.
func LoadArtifact(dir string) (*Version, error) {
	path := filepath.Join(dir, MetadataFile)
	meta, err := ReadMetadata(path)
	if err != nil {
		return nil, err
	}
	build, ok := kinds[meta.Kind]
	if !ok {
		return nil, fmt.Errorf("%s: field \"kind\": unknown model kind %q (known: %s)", path, meta.Kind, strings.Join(Kinds(), ", "))
	}
	m, err := build(dir, meta.Params)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Version{Meta: meta, Model: m, Dir: dir}, nil
}

// ReadMetadata reads and validates a metadata file.
func ReadMetadata(path string) (Metadata, error) {
	var meta Metadata
	data, err := os.ReadFile(path)
	if err != nil {
		return meta, fmt.Errorf("read model metadata: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&meta); err != nil {
		return meta, fmt.Errorf("%s: %s", path, describeJSONError(data, err))
	}
	switch {
	case meta.Name == "":
		return meta, fmt.Errorf("%s: field \"name\" is required", path)
	case !ValidVersion(meta.Version):
		return meta, fmt.Errorf("%s: field \"version\": %q must match %s", path, meta.Version, versionPattern)
	case meta.Kind == "":
		return meta, fmt.Errorf("%s: field \"kind\" is required", path)
	case meta.Created.IsZero():
		return meta, fmt.Errorf("%s: field \"created\" is required (RFC 3339)", path)
	}
	return meta, nil
}

// EncodeMetadata is meta as model.json holds it: indented JSON and a final
// newline.
func EncodeMetadata(meta Metadata) ([]byte, error) {
	data, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode model metadata: %w", err)
	}
	return append(data, '\n'), nil
}

// WriteMetadata writes meta to path, atomically (a server watching the
// directory never reads a half-written file).
func WriteMetadata(path string, meta Metadata) error {
	data, err := EncodeMetadata(meta)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return generate.WriteFile(path, data)
}

// decodeParams decodes a kind's params strictly, so a misspelt field is an
// error rather than a silently ignored setting.
func decodeParams(raw json.RawMessage, into any) error {
	if len(raw) == 0 {
		return errors.New("field \"params\" is required")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("field \"params\": %s", describeJSONError(raw, err))
	}
	return nil
}

// describeJSONError turns a decoding error into a message with the line and
// field where they can be known.
func describeJSONError(data []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("line %d: invalid JSON: %v", lineOf(data, syn.Offset), syn)
	case errors.As(err, &typ):
		return fmt.Sprintf("line %d: field %q: expected %s, got JSON %s", lineOf(data, typ.Offset), typ.Field, typ.Type, typ.Value)
	default:
		return err.Error()
	}
}

func lineOf(data []byte, offset int64) int {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	return bytes.Count(data[:offset], []byte("\n")) + 1
}
