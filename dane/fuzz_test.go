package dane

import (
	"bytes"
	"testing"
)

// FuzzParse parses, formats with String, re-parses and compares.
// Seeds are the RFC 6698 §2.3 examples and near misses.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"0 0 1 d2abde240d7cd3ee6b4b28c54df034b97983a1d16e8a410e4561cb106618e971",
		"1 1 2 92003ba34942dc74152e2f2c408d29eca5a520e7f2e06bb944f4dca346baf63c1b177615d466f6c4b71c216a50292bd58c9ebdd2f74e38fe51ffd48c43326cbc",
		"3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6",
		"2 0 0 30 82",
		"3 1 1",
		"3 1 256 00",
		"3 1 1 abc",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(r.String())
		if err != nil {
			t.Fatalf("String() of %q is %q, which does not parse: %v", s, r.String(), err)
		}
		if again.Usage != r.Usage || again.Selector != r.Selector || again.MatchingType != r.MatchingType || !bytes.Equal(again.Data, r.Data) {
			t.Fatalf("round trip of %q: %v != %v", s, r, again)
		}
		_ = r.Check() // must not panic on any data
	})
}
