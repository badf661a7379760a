package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeWeightsFile(t *testing.T, data []byte) (path, sum string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "weights.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return path, hex.EncodeToString(s[:])
}

func encodeWeights(t *testing.T, w Weights) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteWeights(&buf, w); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWeightsRoundTrip(t *testing.T) {
	w := Weights{Rows: 4, Classes: 3, Values: []float32{0, 1, -1, 0.5, 1e-30, -3e7, 2, 3, 4, 5, 6, 7}}
	data := encodeWeights(t, w)
	if len(data) != weightsHeaderSize+4*12 || string(data[:8]) != weightsMagic {
		t.Fatalf("encoded %d bytes starting %q", len(data), data[:8])
	}
	path, sum := writeWeightsFile(t, data)
	got, err := ReadWeights(path, sum, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range w.Values {
		if got.Values[i] != w.Values[i] {
			t.Fatalf("value %d: %v, want %v", i, got.Values[i], w.Values[i])
		}
	}
}

// TestReadWeightsRefusesBadFiles plants one fault per header field and
// expects an error that names the file and the field.
func TestReadWeightsRefusesBadFiles(t *testing.T) {
	good := encodeWeights(t, Weights{Rows: 2, Classes: 3, Values: []float32{1, 2, 3, 4, 5, 6}})
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name       string
		data       []byte
		rows, cols int
		want       string
	}{
		{"magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), 2, 3, `field "magic"`},
		{"version", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 2); return b }), 2, 3, `field "format_version": 2`},
		{"corrupted payload", edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), 2, 3, `field "crc32c"`},
		{"truncated", good[:len(good)-4], 2, 3, "payload is 20 bytes"},
		{"header only", good[:10], 2, 3, "shorter than the 24-byte header"},
		{"rows", good, 3, 3, `field "rows": 2, the feature config needs 3`},
		{"classes", good, 2, 4, `field "classes": 3, want 4`},
		{"nan", edit(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[weightsHeaderSize:], math.Float32bits(float32(math.NaN())))
			binary.LittleEndian.PutUint32(b[20:], crc32.Checksum(b[weightsHeaderSize:], castagnoli))
			return b
		}), 2, 3, "weight 0 (row 0) is NaN"},
	}
	for _, c := range cases {
		path, sum := writeWeightsFile(t, c.data)
		_, err := ReadWeights(path, sum, c.rows, c.cols)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q naming %s", c.name, err, c.want, path)
		}
	}
	// A file that does not match the sha256 in model.json is refused before
	// it is parsed.
	path, _ := writeWeightsFile(t, good)
	if _, err := ReadWeights(path, strings.Repeat("0", 64), 2, 3); err == nil || !strings.Contains(err.Error(), `"params.weights_sha256"`) {
		t.Errorf("wrong sha256: err %v", err)
	}
}
