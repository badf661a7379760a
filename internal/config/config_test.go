package config

import (
	"io"
	"strings"
	"testing"
)

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	env := map[string]string{"APP_MAX_TEXT_LENGTH": "300", "APP_ADDR": ":9000"}
	fs := NewFlagSet("app", io.Discard)
	addr := fs.String("addr", ":8000", "")
	maxLen := fs.Int("max-text-length", 500, "")
	level := fs.String("log-level", "info", "")
	if err := Parse(fs, "APP", []string{"--addr", ":7000"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if *addr != ":7000" || *maxLen != 300 || *level != "info" {
		t.Errorf("addr %s max %d level %s", *addr, *maxLen, *level)
	}
}

func TestBadEnvNamesTheVariable(t *testing.T) {
	fs := NewFlagSet("app", io.Discard)
	fs.Int("max-batch", 20, "")
	err := Parse(fs, "APP", nil, func(k string) string {
		if k == "APP_MAX_BATCH" {
			return "many"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "APP_MAX_BATCH") {
		t.Errorf("err %v", err)
	}
	fs = NewFlagSet("app", io.Discard)
	if err := Parse(fs, "APP", []string{"stray"}, func(string) string { return "" }); err == nil {
		t.Error("stray argument accepted")
	}
}
