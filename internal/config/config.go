// Package config is the one way commands read settings: flags, each with an
// environment variable fallback (flag > environment > default).
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// EnvName is the variable that backs a flag: prefix + upper snake case,
// e.g. ("ML_INFERENCE", "max-text-length") -> ML_INFERENCE_MAX_TEXT_LENGTH.
func EnvName(prefix, flagName string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse applies environment fallbacks to every flag in fs, then parses args.
// Errors name the flag or variable at fault. ErrHelp is returned as is.
func Parse(fs *flag.FlagSet, prefix string, args []string, getenv func(string) string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := EnvName(prefix, f.Name)
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s=%q: %v", env, v, err))
			}
		}
		f.Usage += fmt.Sprintf(" [$%s]", env)
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}

// NewFlagSet returns a FlagSet that reports errors instead of exiting and
// prints usage to w.
func NewFlagSet(name string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	return fs
}
