package finding

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mxtrace/mxtrace/internal/golden"
)

// TestCatalogue: IDs are unique, well formed and fully described.
func TestCatalogue(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)+$`)
	seen := map[ID]bool{}
	for _, e := range Catalogue {
		if seen[e.ID] {
			t.Errorf("%s listed twice", e.ID)
		}
		seen[e.ID] = true
		if !valid.MatchString(string(e.ID)) {
			t.Errorf("%q is not a lower-case hyphenated ID", e.ID)
		}
		if e.Area == "" || e.Title == "" || e.Fix == "" || e.Example == "" || e.Severity < Info || e.Severity > Error {
			t.Errorf("%s: incomplete entry %+v", e.ID, e)
		}
	}
}

// TestDocs: docs/findings.md is generated from the catalogue.
func TestDocs(t *testing.T) {
	golden.Check(t, filepath.Join("..", "docs", "findings.md"), []byte(Markdown()))
}

func TestNewAndSort(t *testing.T) {
	fs := []Finding{
		New(MXNoIPv6, "b", "m"),
		New(MXTargetNXDomain, "z", "m"),
		New(MXTargetCNAME, "a", "m"),
		New(MXTargetNXDomain, "a", "m"),
	}
	Sort(fs)
	var got []string
	for _, f := range fs {
		got = append(got, string(f.ID)+"@"+f.Subject)
	}
	want := []string{"mx-target-nxdomain@a", "mx-target-nxdomain@z", "mx-target-cname@a", "mx-no-ipv6@b"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Sort = %v, want %v", got, want)
		}
	}
	if Worst(fs) != Error || Worst(nil) != 0 {
		t.Errorf("Worst = %v", Worst(fs))
	}
	if fs[0].Reference == "" || fs[0].Fix == "" {
		t.Errorf("New must copy reference and fix from the catalogue: %+v", fs[0])
	}
}

// TestNewGuardsText: a message or subject with a control character that
// reached it unescaped (an SPF record with ESC sequences, quoted as
// served) comes out escaped, and a huge one cut to MaxMessage; text that
// is already escaped (a backslash) is kept as it is.
func TestNewGuardsText(t *testing.T) {
	f := New(SPFSyntax, "d.test\x1b", "record \"v=spf1 \x1b[2J\x1b]0;title\x07 -all\" in \\x01 form")
	if want := `record "v=spf1 \x1b[2J\x1b]0;title\x07 -all" in \x01 form`; f.Message != want {
		t.Errorf("message %q, want %q", f.Message, want)
	}
	if f.Subject != `d.test\x1b` {
		t.Errorf("subject %q", f.Subject)
	}
	if f := New(MXLookupFailed, "d.test", "lookup A: x\nlookup AAAA: y"); f.Message != "lookup A: x; lookup AAAA: y" {
		t.Errorf("joined errors in a message: %q", f.Message)
	}
	huge := New(SPFSyntax, "d.test", "v=spf1 "+strings.Repeat("ip4:192.0.2.1 ", 5000))
	if len(huge.Message) > MaxMessage || !strings.HasSuffix(huge.Message, "…") {
		t.Errorf("a message of 70,000 octets is kept as %d octets", len(huge.Message))
	}
}

func TestNewUnknownPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New with an unknown ID must panic")
		}
	}()
	New("no-such-id", "x", "y")
}

func TestSeverityJSON(t *testing.T) {
	b, err := json.Marshal(New(MXNull, "d", "m"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"mx-null","severity":"info","subject":"d","message":"m","reference":"RFC 7505 §3","fix":"Nothing, if the domain really takes no mail."}`
	if string(b) != want {
		t.Errorf("got %s\nwant %s", b, want)
	}
	var f Finding
	if err := json.Unmarshal(b, &f); err != nil || f.Severity != Info {
		t.Errorf("round trip: %+v, %v", f, err)
	}
	if _, err := ParseSeverity("fatal"); err == nil {
		t.Error("ParseSeverity(fatal): no error")
	}
}

// TestOnePeriod: a message whose sentence ends with quoted text that has
// its own period (an SMTP reply, an absolute name) ends in one period; an
// ellipsis is kept.
func TestOnePeriod(t *testing.T) {
	for _, tt := range []struct{ format, arg, want string }{
		{"refused: %s.", "554 Go away.", "refused: 554 Go away."},
		{"the alias of %s.", "mx.example.", "the alias of mx.example."},
		{"the alias of %s.", "mx.example", "the alias of mx.example."},
		{"selectors %s", "a, b, ...", "selectors a, b, ..."},
	} {
		if got := Newf(MXNull, "d", tt.format, tt.arg).Message; got != tt.want {
			t.Errorf("Newf(%q, %q) message %q, want %q", tt.format, tt.arg, got, tt.want)
		}
	}
}
