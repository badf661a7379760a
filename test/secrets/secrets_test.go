// Package secrets proves the secret scan of hack/secrets.sh: gitleaks, the
// pinned binary (GITLEAKS_BIN), finds a key committed anywhere in a
// repository's history, even one deleted again, and passes a clean
// repository. The keys are generated at run time, so this repository never
// contains one, not even a fake.
package secrets

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/testtools"
)

func gitleaks(t *testing.T) string {
	t.Helper()
	return testtools.Bin(t, "GITLEAKS_BIN", "gitleaks")
}

// repo creates a Git repository with one commit per map, each writing (or,
// for an empty content, deleting) files.
func repo(t *testing.T, commits ...map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com",
			"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com",
			"GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	for i, files := range commits {
		for name, content := range files {
			p := filepath.Join(dir, name)
			if content == "" {
				git("rm", "-q", name)
				continue
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			git("add", name)
		}
		git("commit", "-q", "-m", "commit "+string(rune('a'+i)))
	}
	return dir
}

type leak struct {
	RuleID string
	File   string
	Commit string
	Secret string
}

// scan runs what hack/secrets.sh runs and returns the exit code and the
// findings of the JSON report.
func scan(t *testing.T, dir string) (int, []leak, string) {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(gitleaks(t), "git", "--redact", "--exit-code", "1", "--no-banner", "--log-opts=--all",
		"--report-format", "json", "--report-path", report, dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	code := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("gitleaks: %v\n%s", err, out.String())
		}
		code = ee.ExitCode()
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("gitleaks wrote no report: %v\n%s", err, out.String())
	}
	var leaks []leak
	if err := json.Unmarshal(data, &leaks); err != nil {
		t.Fatalf("report: %v\n%s", err, data)
	}
	return code, leaks, out.String()
}

// awsKeyID is a random access key ID of the real format (AKIA + 16 base32
// characters), not AWS's documented example, which gitleaks allowlists.
func awsKeyID(t *testing.T) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "AKIA" + string(b)
}

func privateKeyPEM(t *testing.T) string {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func TestPlantedKeysAreCaughtInHistory(t *testing.T) {
	keyID := awsKeyID(t)
	dir := repo(t,
		map[string]string{"README.md": "# app\n"},
		map[string]string{
			"config/aws.env": "AWS_ACCESS_KEY_ID=" + keyID + "\nAWS_REGION=eu-west-1\n",
			"deploy/tls.key": privateKeyPEM(t),
		},
		// Deleted again: still in history, still a leak.
		map[string]string{"config/aws.env": "", "deploy/tls.key": ""},
	)
	code, leaks, out := scan(t, dir)
	if code != 1 {
		t.Fatalf("exit code %d, want 1 (leaks found)\n%s", code, out)
	}
	var rules []string
	for _, l := range leaks {
		rules = append(rules, l.RuleID+" "+l.File)
		if strings.Contains(l.Secret, keyID) {
			t.Errorf("the report is not redacted: %+v", l)
		}
	}
	for _, want := range []string{"aws-access-token config/aws.env", "private-key deploy/tls.key"} {
		if !slices.Contains(rules, want) {
			t.Errorf("findings %v lack %q\n%s", rules, want, out)
		}
	}
	if strings.Contains(out, keyID) {
		t.Errorf("the key appears in gitleaks' output despite --redact:\n%s", out)
	}
	t.Logf("caught: %v", rules)
}

func TestCleanRepositoryPasses(t *testing.T) {
	dir := repo(t,
		map[string]string{"README.md": "# app\n", "config/app.env": "AWS_REGION=eu-west-1\nLOG_LEVEL=info\n"},
		// What this repository does instead: a reference to a secret, no value.
		map[string]string{"deploy/externalsecret.yaml": "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: db}\nspec:\n  data:\n    - secretKey: password\n      remoteRef: {key: db, property: password}\n"},
	)
	if code, leaks, out := scan(t, dir); code != 0 || len(leaks) != 0 {
		t.Fatalf("exit code %d, findings %+v\n%s", code, leaks, out)
	}
}
