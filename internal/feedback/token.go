// Package feedback is how a user's verdict on a prediction reaches the
// version that made it, on whichever replica it lands: every prediction
// response carries a token (request id, item index, model version, predicted
// label, whether the version was pinned or chosen by the split, and the time
// it was issued) signed with an HMAC-SHA256 key that every replica shares;
// POST /feedback echoes the token with the true label. A replica verifies the
// signature and the token's age and, with a Dedup, refuses a token it has
// already counted.
//
// The token is a fixed binary layout, base64url without padding:
//
//	[0]        format version (1)
//	[1:9]      issued at, Unix milliseconds, big-endian
//	[9]        flags: bit 0 set when the version was pinned (X-Model-Version or
//	           an OIP version URL), clear when the traffic split chose it
//	[10:12]    item index within the request (0 for /predict), big-endian
//	[12]       n, then n bytes: the model version
//	           n, then n bytes: the predicted label
//	           n, then n bytes: the request id
//	last 16    HMAC-SHA256(key, everything before), truncated to 128 bits
//
// About 100 characters. A JWT would carry the same claims as JSON with a
// header, and cost a JSON encoding and decoding per token on the prediction
// path; this layout is appended into a reused buffer, with one allocation for
// the string. The HMAC is the standard library's (crypto/hmac, crypto/sha256).
package feedback

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"os"
	"strings"
	"sync"
	"time"
)

// MinKeyBytes is the shortest key accepted: 256 bits, the HMAC-SHA256 output.
const MinKeyBytes = 32

const (
	formatVersion = 1
	macBytes      = 16
	headerBytes   = 12 // format, issued-at, flags, index
	maxField      = 255
	flagPinned    = 1
	// MaxTokenLength bounds what Verify reads: a header, three fields of
	// at most 255 bytes and the MAC, in base64.
	MaxTokenLength = (headerBytes + 3*(1+maxField) + macBytes + 2) / 3 * 4
)

// Errors of Verify. Each is wrapped with the detail.
var (
	// ErrMalformed: not a token this server issues (bad encoding, length,
	// format version or fields).
	ErrMalformed = errors.New("malformed feedback token")
	// ErrSignature: well formed, but no key signed it (tampered, or signed
	// with another key).
	ErrSignature = errors.New("feedback token signature does not verify")
	// ErrExpired: signed by us, but older than the token lifetime.
	ErrExpired = errors.New("feedback token expired")
	// ErrNotYetValid: signed by us, but issued later than now plus the
	// allowed clock skew between replicas.
	ErrNotYetValid = errors.New("feedback token issued in the future")
)

// Claims are what a token says about one prediction.
type Claims struct {
	RequestID string
	Index     int // the item's position in a batch (0 for a single prediction)
	Version   string
	Label     string // the predicted label
	Pinned    bool   // the client chose the version; false: the traffic split did
	IssuedAt  time.Time
}

// Keys sign and verify tokens: the first key signs, every key verifies, so
// a new key can be rolled out (second, then first) without failing the
// tokens already issued.
type Keys struct {
	keys []*keyed
}

// keyed is one key with a pool of HMACs keyed by it (Reset restores an
// HMAC's keyed state without hashing the key again), each with a scratch
// buffer, so that signing and verifying allocate nothing.
type keyed struct {
	pool sync.Pool // of *mac
}

type mac struct {
	h   hash.Hash
	buf []byte
}

func (k *keyed) get() *mac  { return k.pool.Get().(*mac) }
func (k *keyed) put(m *mac) { k.pool.Put(m) }

// sum appends the HMAC of msg to dst.
func (m *mac) sum(dst, msg []byte) []byte {
	m.h.Reset()
	m.h.Write(msg)
	return m.h.Sum(dst)
}

// NewKeys returns Keys for the given secrets, the first one signing. Each
// must be at least MinKeyBytes long.
func NewKeys(secrets ...[]byte) (*Keys, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no feedback key")
	}
	ks := &Keys{}
	for i, s := range secrets {
		if len(s) < MinKeyBytes {
			return nil, fmt.Errorf("feedback key %d is %d bytes; it must be at least %d (e.g. `openssl rand -base64 48`)", i+1, len(s), MinKeyBytes)
		}
		secret := bytes.Clone(s)
		ks.keys = append(ks.keys, &keyed{pool: sync.Pool{New: func() any {
			return &mac{h: hmac.New(sha256.New, secret), buf: make([]byte, 0, MaxTokenLength)}
		}}})
	}
	return ks, nil
}

// LoadKeys reads a key file: one key per line (surrounding whitespace and
// empty lines ignored), the first line signing and every line verifying.
// Each line is used as bytes, as written: a base64 string of 48 random bytes
// is a 64-byte key. Errors name the file, never a key.
func LoadKeys(path string) (*Keys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("feedback key file: %w", err)
	}
	var secrets [][]byte
	for line := range strings.SplitSeq(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			secrets = append(secrets, []byte(line))
		}
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("feedback key file %s holds no key", path)
	}
	ks, err := NewKeys(secrets...)
	if err != nil {
		return nil, fmt.Errorf("feedback key file %s: %w", path, err)
	}
	return ks, nil
}

// Len is the number of keys.
func (k *Keys) Len() int { return len(k.keys) }

// Append appends the token for c to dst (base64url, no padding) and returns
// the extended slice. Fields longer than 255 bytes are an error (request ids
// are at most 128 bytes; versions and labels are short).
func (k *Keys) Append(dst []byte, c Claims) ([]byte, error) {
	if len(c.Version) > maxField || len(c.Label) > maxField || len(c.RequestID) > maxField {
		return dst, fmt.Errorf("feedback token: a field is longer than %d bytes", maxField)
	}
	if c.Index < 0 || c.Index > 0xffff {
		return dst, fmt.Errorf("feedback token: item index %d is out of range", c.Index)
	}
	m := k.keys[0].get()
	defer k.keys[0].put(m)
	b := append(m.buf[:0], formatVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.IssuedAt.UnixMilli()))
	var flags byte
	if c.Pinned {
		flags |= flagPinned
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(c.Index))
	for _, f := range [3]string{c.Version, c.Label, c.RequestID} {
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	n := len(b)
	b = m.sum(b, b)
	m.buf = b[:0]
	return base64.RawURLEncoding.AppendEncode(dst, b[:n+macBytes]), nil
}

// Token is Append to a new string.
func (k *Keys) Token(c Claims) (string, error) {
	var buf [MaxTokenLength]byte
	b, err := k.Append(buf[:0], c)
	return string(b), err
}

// ID is a verified token's identity for Dedup: the first 64 bits of its
// MAC, which nobody without a key can choose.
type ID uint64

// Verify checks a token's signature against every key and its age against
// ttl at now (allowing skew into the future for clocks that differ between
// replicas) and returns its claims and identity.
func (k *Keys) Verify(token string, now time.Time, ttl, skew time.Duration) (Claims, ID, error) {
	if len(token) > MaxTokenLength {
		return Claims{}, 0, fmt.Errorf("%w: %d characters, at most %d", ErrMalformed, len(token), MaxTokenLength)
	}
	m := k.keys[0].get()
	defer k.keys[0].put(m)
	b, err := base64.RawURLEncoding.AppendDecode(m.buf[:0], []byte(token))
	m.buf = b[:0]
	if err != nil {
		return Claims{}, 0, fmt.Errorf("%w: not base64url", ErrMalformed)
	}
	if len(b) < headerBytes+3+macBytes {
		return Claims{}, 0, fmt.Errorf("%w: too short", ErrMalformed)
	}
	payload, tag := b[:len(b)-macBytes], b[len(b)-macBytes:]
	if payload[0] != formatVersion {
		return Claims{}, 0, fmt.Errorf("%w: format version %d, want %d", ErrMalformed, payload[0], formatVersion)
	}
	ok := false
	var sum [sha256.Size]byte
	for i, key := range k.keys {
		km := m
		if i > 0 {
			km = key.get()
		}
		ok = hmac.Equal(km.sum(sum[:0], payload)[:macBytes], tag)
		if i > 0 {
			key.put(km)
		}
		if ok {
			break
		}
	}
	if !ok {
		return Claims{}, 0, ErrSignature
	}
	// Signed by us: the fields were written by Append. They are parsed
	// defensively all the same.
	c := Claims{
		IssuedAt: time.UnixMilli(int64(binary.BigEndian.Uint64(payload[1:9]))).UTC(),
		Pinned:   payload[9]&flagPinned != 0,
		Index:    int(binary.BigEndian.Uint16(payload[10:12])),
	}
	rest := payload[headerBytes:]
	var fields [3]string
	for i := range fields {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return Claims{}, 0, fmt.Errorf("%w: truncated field", ErrMalformed)
		}
		fields[i] = string(rest[1 : 1+int(rest[0])])
		rest = rest[1+int(rest[0]):]
	}
	if len(rest) != 0 {
		return Claims{}, 0, fmt.Errorf("%w: trailing bytes", ErrMalformed)
	}
	c.Version, c.Label, c.RequestID = fields[0], fields[1], fields[2]
	switch age := now.Sub(c.IssuedAt); {
	case age > ttl:
		return c, 0, fmt.Errorf("%w: issued %s ago, tokens are valid for %s", ErrExpired, age.Round(time.Second), ttl)
	case age < -skew:
		return c, 0, fmt.Errorf("%w: issued %s from now", ErrNotYetValid, (-age).Round(time.Millisecond))
	}
	return c, ID(binary.BigEndian.Uint64(tag[:8])), nil
}
