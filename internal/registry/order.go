package registry

import (
	"cmp"
	"strings"
)

// VersionOrder compares version names with their digit runs as numbers, so
// that a registry's v9 comes before v10 (a plain string order would put v10
// between v1 and v2). It is the order of Set.Versions, and Latest is the
// last.
func VersionOrder(a, b string) int {
	for a != "" && b != "" {
		ra, restA := leadingRun(a)
		rb, restB := leadingRun(b)
		if c := compareRun(ra, rb); c != 0 {
			return c
		}
		a, b = restA, restB
	}
	return cmp.Compare(len(a), len(b))
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// leadingRun splits s after its first run of digits or of non-digits.
func leadingRun(s string) (run, rest string) {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i], s[i:]
}

func compareRun(a, b string) int {
	if isDigit(a[0]) && isDigit(b[0]) {
		ta, tb := strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if c := cmp.Compare(len(ta), len(tb)); c != 0 {
			return c
		}
		if c := strings.Compare(ta, tb); c != 0 {
			return c
		}
		// Equal numbers: fewer leading zeros first, so the order is total.
		return cmp.Compare(len(a), len(b))
	}
	return strings.Compare(a, b)
}
