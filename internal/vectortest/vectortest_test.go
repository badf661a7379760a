package vectortest

import (
	"math"
	"strconv"
	"testing"
)

// Same rejects a value off by 1e-9, a missing case and a changed string,
// and lets a last-bit difference pass.
func TestSameCatchesStaleness(t *testing.T) {
	z := 1.2345678901234567
	doc := func(z string, cases string, name string) []byte {
		return []byte(`{"name": "` + name + `", "ztest": [{"want": {"z": ` + z + `}}` + cases + `]}`)
	}
	committed := doc(strconv.FormatFloat(z, 'g', -1, 64), `, {"want": {"z": 2}}`, "a")
	for what, fresh := range map[string][]byte{
		"a value off by 1e-9": doc(strconv.FormatFloat(z*(1+1e-9), 'g', -1, 64), `, {"want": {"z": 2}}`, "a"),
		"a missing case":      doc(strconv.FormatFloat(z, 'g', -1, 64), ``, "a"),
		"a changed string":    doc(strconv.FormatFloat(z, 'g', -1, 64), `, {"want": {"z": 2}}`, "b"),
	} {
		if err := Same(fresh, committed); err == nil {
			t.Errorf("%s passed", what)
		}
	}
	rounding := doc(strconv.FormatFloat(math.Nextafter(z, 0), 'g', -1, 64), `, {"want": {"z": 2}}`, "a")
	if err := Same(rounding, committed); err != nil {
		t.Errorf("a last-bit difference failed: %v", err)
	}
}
