package lifecycle

import (
	"fmt"
	"strings"
)

// ModelURI is a reference to a registered model's version, in MLflow's
// models:/ form: models:/NAME@ALIAS follows an alias, models:/NAME/VERSION
// pins a version.
type ModelURI struct {
	Model   string
	Alias   string // set when following an alias
	Version string // set when pinned
}

func (u ModelURI) String() string {
	if u.Alias != "" {
		return "models:/" + u.Model + "@" + u.Alias
	}
	return "models:/" + u.Model + "/" + u.Version
}

// ParseModelURI reads models:/NAME@ALIAS or models:/NAME/VERSION.
func ParseModelURI(s string) (ModelURI, error) {
	rest, ok := strings.CutPrefix(s, "models:/")
	if !ok {
		return ModelURI{}, fmt.Errorf("model URI %q: want models:/NAME@ALIAS or models:/NAME/VERSION", s)
	}
	var u ModelURI
	if name, alias, ok := strings.Cut(rest, "@"); ok {
		u = ModelURI{Model: name, Alias: alias}
		if alias == "" || strings.ContainsAny(alias, "/@'\" ") {
			return ModelURI{}, fmt.Errorf("model URI %q: alias %q is not an alias name", s, alias)
		}
	} else if name, version, ok := strings.Cut(rest, "/"); ok {
		u = ModelURI{Model: name, Version: version}
		if err := CheckVersion(version); err != nil {
			return ModelURI{}, fmt.Errorf("model URI %q: %w", s, err)
		}
	} else {
		return ModelURI{}, fmt.Errorf("model URI %q: name an alias (models:/%s@production) or a version (models:/%s/3)", s, rest, rest)
	}
	if err := CheckModelName(u.Model); err != nil || strings.ContainsAny(u.Model, "/@") {
		return ModelURI{}, fmt.Errorf("model URI %q: %q is not a registered model name", s, u.Model)
	}
	return u, nil
}
