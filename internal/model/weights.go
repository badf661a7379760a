package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
)

// The weights file of a hashed-logreg artifact is little-endian binary:
//
//	offset size field
//	0      8    magic "SNTWGHT\x00"
//	8      4    format_version (WeightsFormatVersion)
//	12     4    rows (feature dimensions + 1 for the bias)
//	16     4    classes (3, in the order of Labels)
//	20     4    crc32c of the payload (Castagnoli)
//	24     4*rows*classes  payload: float32 weights, row-major
//
// The crc makes a truncated or corrupted file fail on its own; the sha256 in
// model.json ties the file to the metadata that describes it.
const (
	weightsMagic = "SNTWGHT\x00"
	// WeightsFormatVersion is the only layout this build reads or writes.
	WeightsFormatVersion = 1
	weightsHeaderSize    = 24
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Weights is a dense rows x classes matrix of float32, row-major.
type Weights struct {
	Rows, Classes int
	Values        []float32
}

// WriteWeights encodes w in the weights format.
func WriteWeights(out io.Writer, w Weights) error {
	if w.Rows <= 0 || w.Classes <= 0 || len(w.Values) != w.Rows*w.Classes {
		return fmt.Errorf("weights: %d values for %d rows x %d classes", len(w.Values), w.Rows, w.Classes)
	}
	payload := make([]byte, 4*len(w.Values))
	for i, v := range w.Values {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("weights: value %d is %v", i, v)
		}
		binary.LittleEndian.PutUint32(payload[4*i:], math.Float32bits(v))
	}
	header := make([]byte, weightsHeaderSize)
	copy(header, weightsMagic)
	binary.LittleEndian.PutUint32(header[8:], WeightsFormatVersion)
	binary.LittleEndian.PutUint32(header[12:], uint32(w.Rows))
	binary.LittleEndian.PutUint32(header[16:], uint32(w.Classes))
	binary.LittleEndian.PutUint32(header[20:], crc32.Checksum(payload, castagnoli))
	if _, err := out.Write(header); err != nil {
		return err
	}
	_, err := out.Write(payload)
	return err
}

// ReadWeights reads and validates a weights file: its sha256 must be
// wantSHA256, and its shape rows x classes. Errors name the file and field.
func ReadWeights(path, wantSHA256 string, rows, classes int) (Weights, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Weights{}, fmt.Errorf("read weights: %w", err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != wantSHA256 {
		return Weights{}, fmt.Errorf("%s: sha256 is %s, model.json field \"params.weights_sha256\" says %s", path, got, wantSHA256)
	}
	w, err := decodeWeights(data)
	if err != nil {
		return Weights{}, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case w.Rows != rows:
		return Weights{}, fmt.Errorf("%s: field \"rows\": %d, the feature config needs %d", path, w.Rows, rows)
	case w.Classes != classes:
		return Weights{}, fmt.Errorf("%s: field \"classes\": %d, want %d", path, w.Classes, classes)
	}
	return w, nil
}

func decodeWeights(data []byte) (Weights, error) {
	if len(data) < weightsHeaderSize {
		return Weights{}, fmt.Errorf("%d bytes is shorter than the %d-byte header", len(data), weightsHeaderSize)
	}
	if !bytes.Equal(data[:8], []byte(weightsMagic)) {
		return Weights{}, fmt.Errorf("field \"magic\": %q is not a weights file's %q", data[:8], weightsMagic)
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != WeightsFormatVersion {
		return Weights{}, fmt.Errorf("field \"format_version\": %d, this build reads only %d", v, WeightsFormatVersion)
	}
	rows := int(binary.LittleEndian.Uint32(data[12:]))
	classes := int(binary.LittleEndian.Uint32(data[16:]))
	if rows == 0 || classes == 0 || rows > 1<<26 || classes > 1<<10 {
		return Weights{}, fmt.Errorf("field \"rows\"/\"classes\": %d x %d is not a valid shape", rows, classes)
	}
	payload := data[weightsHeaderSize:]
	if want := 4 * rows * classes; len(payload) != want {
		return Weights{}, fmt.Errorf("payload is %d bytes, %d rows x %d classes need %d", len(payload), rows, classes, want)
	}
	if crc := crc32.Checksum(payload, castagnoli); crc != binary.LittleEndian.Uint32(data[20:]) {
		return Weights{}, fmt.Errorf("field \"crc32c\": payload checksum %08x, header says %08x (corrupted file)", crc, binary.LittleEndian.Uint32(data[20:]))
	}
	w := Weights{Rows: rows, Classes: classes, Values: make([]float32, rows*classes)}
	for i := range w.Values {
		v := math.Float32frombits(binary.LittleEndian.Uint32(payload[4*i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return Weights{}, fmt.Errorf("weight %d (row %d) is %v", i, i/classes, v)
		}
		w.Values[i] = v
	}
	return w, nil
}
