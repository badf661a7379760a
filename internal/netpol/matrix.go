// Package netpol checks a declared connectivity matrix (which pod may open a
// connection to which, on what port) against rendered NetworkPolicies, using
// cyclonus' NetworkPolicy evaluator (github.com/mattfenwick/cyclonus/pkg/matcher),
// the engine behind cyclonus' conformance probes.
package netpol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// EnvPlaceholder in a flow's namespace becomes the environment's name.
const EnvPlaceholder = "{env}"

// Matrix is infrastructure/network/connectivity.yaml.
type Matrix struct {
	Flows []Flow `json:"flows"`
	// Path is the file the matrix was read from, for messages.
	Path string `json:"-"`
}

// Flow is one connection and the verdict the policies must give it.
type Flow struct {
	Name string `json:"name"`
	// Why documents the decision; printed with a failing flow.
	Why      string  `json:"why,omitempty"`
	From     Peer    `json:"from"`
	To       Peer    `json:"to"`
	Port     int32   `json:"port"`
	Protocol string  `json:"protocol"`
	Expect   Verdict `json:"expect"`
	// Environments the flow is checked in: all, or a list of names.
	Environments Environments `json:"environments"`
	// Pending, when set, says why the flow cannot be checked yet (neither
	// end's namespace is rendered by these manifests). It is skipped, and it
	// is an error once it becomes checkable.
	Pending string `json:"pending,omitempty"`
}

// Peer is a pod ({namespace, labels}) or an address outside the cluster ({ip}).
type Peer struct {
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	// IP is an outside address, or, with a namespace, the pod's address
	// (default: a synthetic one in 10.244.0.0/16).
	IP string `json:"ip,omitempty"`
}

// External reports whether the peer is outside the cluster.
func (p Peer) External() bool { return p.Namespace == "" }

func (p Peer) String() string {
	if p.External() {
		return p.IP
	}
	return p.Namespace + "/" + labelString(p.Labels)
}

func labelString(l map[string]string) string {
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Verdict is allow or deny.
type Verdict string

const (
	Allow Verdict = "allow"
	Deny  Verdict = "deny"
)

// Environments is `all` or a list of environment names.
type Environments struct {
	All   bool
	Names []string
}

// UnmarshalJSON accepts "all" or a list of names.
func (e *Environments) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s != "all" {
			return fmt.Errorf("environments must be \"all\" or a list of environment names, not %q", s)
		}
		*e = Environments{All: true}
		return nil
	}
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return fmt.Errorf("environments must be \"all\" or a list of environment names: %v", err)
	}
	*e = Environments{Names: names}
	return nil
}

// MarshalJSON is the inverse of UnmarshalJSON.
func (e Environments) MarshalJSON() ([]byte, error) {
	if e.All {
		return json.Marshal("all")
	}
	return json.Marshal(e.Names)
}

// Includes reports whether the flow is checked in env.
func (e Environments) Includes(env string) bool {
	return e.All || slices.Contains(e.Names, env)
}

// Load reads and validates a matrix. envs are the known environment names.
// Unknown fields, duplicate keys and invalid values are errors naming the file
// and the field (flows[i] "name": field).
func Load(path string, envs []string) (*Matrix, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read connectivity matrix: %w", err)
	}
	return Parse(path, data, envs)
}

// Parse is Load on data already read; path is used in messages.
func Parse(path string, data []byte, envs []string) (*Matrix, error) {
	var m Matrix
	if err := yaml.UnmarshalStrict(bytes.TrimSpace(data), &m); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	m.Path = path
	if len(m.Flows) == 0 {
		return nil, fmt.Errorf("%s: field \"flows\" must list at least one flow", path)
	}
	seen := map[string]bool{}
	for i, f := range m.Flows {
		at := fmt.Sprintf("%s: flows[%d]", path, i)
		if f.Name != "" {
			at += fmt.Sprintf(" %q", f.Name)
		}
		if err := f.validate(envs); err != nil {
			return nil, fmt.Errorf("%s: %v", at, err)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("%s: name is used by an earlier flow", at)
		}
		seen[f.Name] = true
	}
	return &m, nil
}

var protocols = []string{"TCP", "UDP", "SCTP"}

func (f Flow) validate(envs []string) error {
	switch {
	case f.Name == "":
		return fmt.Errorf("field \"name\" is required")
	case f.Port < 1 || f.Port > 65535:
		return fmt.Errorf("field \"port\" must be 1..65535, not %d", f.Port)
	case !slices.Contains(protocols, f.Protocol):
		return fmt.Errorf("field \"protocol\" must be one of %v, not %q", protocols, f.Protocol)
	case f.Expect != Allow && f.Expect != Deny:
		return fmt.Errorf("field \"expect\" must be allow or deny, not %q", f.Expect)
	case !f.Environments.All && len(f.Environments.Names) == 0:
		return fmt.Errorf("field \"environments\" is required: \"all\" or a list of %v", envs)
	}
	for _, e := range f.Environments.Names {
		if !slices.Contains(envs, e) {
			return fmt.Errorf("field \"environments\" names %q, which is not an environment of infrastructure/platform.yaml %v", e, envs)
		}
	}
	for side, p := range map[string]Peer{"from": f.From, "to": f.To} {
		if err := p.validate(); err != nil {
			return fmt.Errorf("field %q: %v", side, err)
		}
	}
	if f.From.External() && f.To.External() {
		return fmt.Errorf("fields \"from\" and \"to\" are both outside the cluster; at least one end needs a namespace")
	}
	return nil
}

func (p Peer) validate() error {
	if p.IP != "" {
		if _, err := netip.ParseAddr(p.IP); err != nil {
			return fmt.Errorf("ip %q is not an IP address", p.IP)
		}
	}
	switch {
	case p.Namespace == "" && p.IP == "":
		return fmt.Errorf("needs a namespace (a pod) or an ip (outside the cluster)")
	case p.Namespace == "" && len(p.Labels) > 0:
		return fmt.Errorf("labels need a namespace")
	case p.Namespace != "" && len(p.Labels) == 0:
		return fmt.Errorf("a pod needs labels, which policies select it by")
	}
	return nil
}

// ForEnv returns the flows checked in env, with EnvPlaceholder replaced.
func (m *Matrix) ForEnv(env string) []Flow {
	var out []Flow
	for _, f := range m.Flows {
		if !f.Environments.Includes(env) {
			continue
		}
		f.From.Namespace = strings.ReplaceAll(f.From.Namespace, EnvPlaceholder, env)
		f.To.Namespace = strings.ReplaceAll(f.To.Namespace, EnvPlaceholder, env)
		out = append(out, f)
	}
	return out
}
