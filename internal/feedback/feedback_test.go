package feedback

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var (
	keyA = []byte("0123456789abcdef0123456789abcdef-key-a")
	keyB = []byte("fedcba9876543210fedcba9876543210-key-b")
	t0   = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

const (
	ttl  = time.Hour
	skew = time.Minute
)

func mustKeys(t testing.TB, secrets ...[]byte) *Keys {
	t.Helper()
	k, err := NewKeys(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func claims() Claims {
	return Claims{RequestID: "4bf92f3577b34da6a3ce929d0e0e4736", Index: 3, Version: "v2", Label: "positive", Pinned: true, IssuedAt: t0}
}

func TestRoundTrip(t *testing.T) {
	k := mustKeys(t, keyA)
	tok, err := k.Token(claims())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("token (%d characters): %s", len(tok), tok)
	if strings.ContainsAny(tok, "+/=,") {
		t.Errorf("token %q is not unpadded base64url (or holds a comma, which OIP joins tokens with)", tok)
	}
	got, id, err := k.Verify(tok, t0.Add(time.Minute), ttl, skew)
	if err != nil {
		t.Fatal(err)
	}
	if got != claims() {
		t.Errorf("claims %+v, want %+v", got, claims())
	}
	if id == 0 {
		t.Error("zero id")
	}
	// Split-routed, first item, the longest request id the server accepts.
	c := Claims{RequestID: strings.Repeat("r", 128), Version: "v10", Label: "neutral", IssuedAt: t0}
	tok, err = k.Token(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := k.Verify(tok, t0, ttl, skew); err != nil || got != c {
		t.Errorf("Verify = %+v, %v; want %+v", got, err, c)
	}
	if len(tok) > MaxTokenLength {
		t.Errorf("token of %d characters is over MaxTokenLength %d", len(tok), MaxTokenLength)
	}
}

// TestTamperedTokensAreRefused flips every bit of a token's bytes in turn:
// each one is refused, as malformed or with a bad signature, never accepted.
func TestTamperedTokensAreRefused(t *testing.T) {
	k := mustKeys(t, keyA)
	tok, _ := k.Token(claims())
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		for bit := range 8 {
			b := []byte(string(raw))
			b[i] ^= 1 << bit
			_, _, err := k.Verify(base64.RawURLEncoding.EncodeToString(b), t0, ttl, skew)
			if !errors.Is(err, ErrSignature) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("byte %d bit %d flipped: Verify = %v, want ErrSignature or ErrMalformed", i, bit, err)
			}
		}
	}
	// Truncated, extended, not base64, empty, huge.
	for name, bad := range map[string]string{
		"truncated":  tok[:len(tok)-4],
		"extended":   tok + "AAAA",
		"not base64": tok[:10] + "!!" + tok[12:],
		"empty":      "",
		"huge":       strings.Repeat("A", MaxTokenLength+4),
		"padded":     tok + "==",
	} {
		if _, _, err := k.Verify(bad, t0, ttl, skew); !errors.Is(err, ErrSignature) && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Verify = %v, want a refusal", name, err)
		}
	}
}

func TestExpiryAndSkew(t *testing.T) {
	k := mustKeys(t, keyA)
	tok, _ := k.Token(claims())
	for _, c := range []struct {
		now  time.Time
		want error
	}{
		{t0, nil},
		{t0.Add(ttl), nil},
		{t0.Add(ttl + time.Millisecond), ErrExpired},
		{t0.Add(-skew), nil},
		{t0.Add(-skew - time.Millisecond), ErrNotYetValid},
	} {
		if _, _, err := k.Verify(tok, c.now, ttl, skew); !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("at %s: Verify = %v, want %v", c.now.Sub(t0), err, c.want)
		}
	}
}

// TestKeyRotation: a server with keys (new, old) verifies tokens of both and
// signs with new; a server with old only refuses new tokens.
func TestKeyRotation(t *testing.T) {
	old, both, other := mustKeys(t, keyA), mustKeys(t, keyB, keyA), mustKeys(t, keyB)
	oldTok, _ := old.Token(claims())
	newTok, _ := both.Token(claims())
	if _, _, err := both.Verify(oldTok, t0, ttl, skew); err != nil {
		t.Errorf("rotated server refuses a token of the old key: %v", err)
	}
	if _, _, err := other.Verify(newTok, t0, ttl, skew); err != nil {
		t.Errorf("the new key does not verify a token the rotated server signed: %v", err)
	}
	if _, _, err := old.Verify(newTok, t0, ttl, skew); !errors.Is(err, ErrSignature) {
		t.Errorf("old-key server: Verify(new token) = %v, want ErrSignature", err)
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k, err := LoadKeys(write("two", "\n  "+string(keyB)+"  \n"+string(keyA)+"\n\n"))
	if err != nil || k.Len() != 2 {
		t.Fatalf("LoadKeys = %v, %v; want two keys", k, err)
	}
	tok, _ := k.Token(claims())
	if _, _, err := mustKeys(t, keyB).Verify(tok, t0, ttl, skew); err != nil {
		t.Errorf("the first line does not sign: %v", err)
	}
	for name, content := range map[string]string{"empty": " \n\n", "short": "too-short-a-key\n"} {
		_, err := LoadKeys(write(name, content))
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, name)) {
			t.Errorf("%s: LoadKeys error %v, want one naming the file", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "too-short") {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
	if _, err := LoadKeys(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file loads")
	}
}

func TestDedup(t *testing.T) {
	d := NewDedup(ttl, 3)
	now := t0.Add(10 * time.Minute)
	for i, c := range []struct {
		id     ID
		replay bool
		err    error
	}{{1, false, nil}, {1, true, nil}, {2, false, nil}, {3, false, nil}, {3, true, nil}, {4, false, ErrFull}} {
		replay, err := d.Add(c.id, t0, now)
		if replay != c.replay || !errors.Is(err, c.err) && !(c.err == nil && err == nil) {
			t.Errorf("add %d (id %d) = %v, %v; want %v, %v", i, c.id, replay, err, c.replay, c.err)
		}
	}
	// Two lifetimes later the generation of t0 can hold no valid token: it
	// is dropped, and there is room again.
	later := t0.Add(2*ttl + time.Minute)
	if replay, err := d.Add(4, later, later); replay || err != nil {
		t.Errorf("after two lifetimes: Add = %v, %v; want room", replay, err)
	}
	if d.Len() != 1 {
		t.Errorf("Len %d after the old generation went, want 1", d.Len())
	}
}

// TestDedupKeepsEveryValidToken: a token is remembered for as long as it
// verifies, whatever its issue time within the generation.
func TestDedupKeepsEveryValidToken(t *testing.T) {
	d := NewDedup(ttl, 1000)
	for i := range 100 {
		issued := t0.Add(time.Duration(i) * 73 * time.Second)
		if _, err := d.Add(ID(i+1), issued, issued); err != nil {
			t.Fatal(err)
		}
		// Replayed at the last instant the token is valid.
		if replay, err := d.Add(ID(i+1), issued, issued.Add(ttl)); !replay || err != nil {
			t.Fatalf("token issued at +%s replayed at its expiry: replay %v, %v", issued.Sub(t0), replay, err)
		}
	}
}

// BenchmarkToken is the cost a token adds to a prediction (mint) and to a
// feedback request (verify).
func BenchmarkToken(b *testing.B) {
	k := mustKeys(b, keyA)
	c := claims()
	b.Run("mint", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, MaxTokenLength)
		for b.Loop() {
			buf, _ = k.Append(buf[:0], c)
		}
	})
	tok, _ := k.Token(c)
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := k.Verify(tok, t0, ttl, skew); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDedupMemory measures the replay store's memory per token held,
// at 100,000 tokens (reported as bytes/entry).
func BenchmarkDedupMemory(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d := NewDedup(ttl, n)
		for i := range n {
			d.Add(ID(uint64(i)*0x9e3779b97f4a7c15), t0, t0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/entry")
		runtime.KeepAlive(d)
	}
}
