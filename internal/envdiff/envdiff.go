// Package envdiff compares two rendered environments object by object:
// objects are matched by kind and name (namespaces differ by design), and
// each difference is one line with its field path.
package envdiff

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ml-platform/platform/internal/render"
)

// Change is one differing field.
type Change struct {
	Path   string
	Before string // "" when added
	After  string // "" when removed
}

// ObjectDiff is the difference for one object.
type ObjectDiff struct {
	Key     string // Kind/name
	OnlyIn  string // set when the object exists in one environment only
	Changes []Change
}

func key(o render.Object) string { return o.GetKind() + "/" + o.GetName() }

// Diff compares environments a and b.
func Diff(aName string, a []render.Object, bName string, b []render.Object) []ObjectDiff {
	am, bm := index(a), index(b)
	keys := map[string]bool{}
	for k := range am {
		keys[k] = true
	}
	for k := range bm {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out []ObjectDiff
	for _, k := range sorted {
		ao, inA := am[k]
		bo, inB := bm[k]
		switch {
		case !inB:
			out = append(out, ObjectDiff{Key: k, OnlyIn: aName})
		case !inA:
			out = append(out, ObjectDiff{Key: k, OnlyIn: bName})
		default:
			if ch := compare(flatten(ao.Object), flatten(bo.Object)); len(ch) > 0 {
				out = append(out, ObjectDiff{Key: k, Changes: ch})
			}
		}
	}
	return out
}

func index(objs []render.Object) map[string]render.Object {
	m := make(map[string]render.Object, len(objs))
	for _, o := range objs {
		m[key(o)] = o
	}
	return m
}

func compare(a, b map[string]string) []Change {
	paths := map[string]bool{}
	for p := range a {
		paths[p] = true
	}
	for p := range b {
		paths[p] = true
	}
	var out []Change
	for p := range paths {
		if a[p] != b[p] {
			out = append(out, Change{Path: p, Before: a[p], After: b[p]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// flatten maps every leaf to its path: spec.template.spec.containers[0].image.
func flatten(v any) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 {
				out[prefix] = "{}"
			}
			for k, e := range x {
				p := k
				if strings.ContainsAny(k, ".[]/ ") {
					p = `"` + k + `"`
				}
				if prefix != "" {
					p = prefix + "." + p
				}
				walk(p, e)
			}
		case []any:
			if len(x) == 0 {
				out[prefix] = "[]"
			}
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", prefix, i), e)
			}
		default:
			data, _ := json.Marshal(x)
			out[prefix] = string(data)
		}
	}
	walk("", v)
	return out
}

// Write prints the diff; it returns how many objects differ.
func Write(w io.Writer, aName, bName string, diffs []ObjectDiff) int {
	for _, d := range diffs {
		if d.OnlyIn != "" {
			fmt.Fprintf(w, "%s: only in %s\n", d.Key, d.OnlyIn)
			continue
		}
		fmt.Fprintf(w, "%s:\n", d.Key)
		for _, c := range d.Changes {
			switch {
			case c.Before == "":
				fmt.Fprintf(w, "  + %s: %s (only in %s)\n", c.Path, c.After, bName)
			case c.After == "":
				fmt.Fprintf(w, "  - %s: %s (only in %s)\n", c.Path, c.Before, aName)
			default:
				fmt.Fprintf(w, "  ~ %s: %s -> %s\n", c.Path, c.Before, c.After)
			}
		}
	}
	if len(diffs) == 0 {
		fmt.Fprintf(w, "%s and %s render the same objects\n", aName, bName)
	}
	return len(diffs)
}
