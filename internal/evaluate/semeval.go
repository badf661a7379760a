package evaluate

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ml-platform/platform/internal/model"
)

// LoadSemEval reads the SemEval 2013-2016 Subtask A file (data/semeval): a
// header "split<TAB>label<TAB>text", then one tweet per line. Each example's
// Category is its split ("2013train", ..., "2016test"). Texts are decoded
// (DecodeTweet) as they are read. Errors name the file, line and field.
func LoadSemEval(path string) (*Dataset, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dataset: %w", err)
	}
	sum := sha256.Sum256(data)
	ds := &Dataset{Path: path, SHA256: hex.EncodeToString(sum[:])}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if line == 1 {
			if text != "split\tlabel\ttext" {
				return nil, fmt.Errorf("%s:1: header must be \"split\\tlabel\\ttext\", got %q", path, text)
			}
			continue
		}
		fields := strings.SplitN(text, "\t", 3)
		if len(fields) != 3 {
			return nil, fmt.Errorf("%s:%d: want 3 tab-separated fields, got %d", path, line, len(fields))
		}
		label := model.Sentiment(fields[1])
		if !slices.Contains(model.Labels, label) {
			return nil, fmt.Errorf("%s:%d: field \"label\": %q is not one of positive, negative, neutral", path, line, label)
		}
		if fields[0] == "" {
			return nil, fmt.Errorf("%s:%d: field \"split\" is empty", path, line)
		}
		tweet := DecodeTweet(fields[2])
		if strings.TrimSpace(tweet) == "" {
			return nil, fmt.Errorf("%s:%d: field \"text\" is empty", path, line)
		}
		ds.Examples = append(ds.Examples, Example{Text: tweet, Label: label, Category: fields[0], Line: line})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(ds.Examples) == 0 {
		return nil, fmt.Errorf("%s: no examples", path)
	}
	return ds, nil
}

// Subset returns the examples whose category (for SemEval data, the split)
// keep accepts, with the same identity (path and sha256 of the whole file).
func (ds *Dataset) Subset(keep func(category string) bool) *Dataset {
	out := &Dataset{Path: ds.Path, SHA256: ds.SHA256}
	for _, ex := range ds.Examples {
		if keep(ex.Category) {
			out.Examples = append(out.Examples, ex)
		}
	}
	return out
}

// DecodeTweet undoes the artefacts the SemEval texts carry from their origin:
//
//   - CSV quoting: a text wrapped in double quotes whose inner quotes are
//     all doubled is unwrapped, once.
//   - JSON-style escapes: \uXXXX (with surrogate pairs) and \" (with any
//     quotes right after it: some 2013 texts were quoted twice, \"""" in the
//     file); any other backslash is text ("\m/", ":\").
//   - HTML entities (&amp; &lt; &gt; &quot; ...), as the Twitter API sent
//     them, up to three times over.
func DecodeTweet(s string) string {
	s = unquoteCSV(s)
	if strings.Contains(s, `\`) {
		s = decodeEscapes(s)
	}
	// A few texts were escaped more than once ("&amp;amp;amp;").
	for range 3 {
		if !strings.Contains(s, "&") {
			break
		}
		s = html.UnescapeString(s)
	}
	return s
}

func decodeEscapes(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		if s[i+1] == '"' {
			b.WriteByte('"')
			for i += 2; i < len(s) && s[i] == '"'; i++ {
			}
			continue
		}
		r, n := hexEscape(s[i:])
		if n == 0 {
			b.WriteByte('\\')
			i++
			continue
		}
		i += n
		if utf16.IsSurrogate(r) {
			if r2, n2 := hexEscape(s[i:]); n2 > 0 {
				if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
					r = pair
					i += n2
				}
			}
		}
		b.WriteRune(r) // a lone surrogate becomes U+FFFD
	}
	return b.String()
}

// hexEscape parses a leading \uXXXX; n is 0 when s does not start with one.
func hexEscape(s string) (r rune, n int) {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return 0, 0
	}
	v, err := strconv.ParseUint(s[2:6], 16, 16)
	if err != nil {
		return 0, 0
	}
	return rune(v), 6
}

func unquoteCSV(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	inner := s[1 : len(s)-1]
	// Every inner quote must be part of a pair, or this is not CSV quoting
	// but a tweet that starts and ends with a quotation.
	for i := 0; i < len(inner); i++ {
		if inner[i] == '"' {
			if i+1 >= len(inner) || inner[i+1] != '"' {
				return s
			}
			i++
		}
	}
	return strings.ReplaceAll(inner, `""`, `"`)
}
