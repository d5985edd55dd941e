package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckOutput(t *testing.T) {
	truthFile := write(t, "truth.jsonl", strings.Join([]string{
		`{"domain":"a.test","kind":"own","result":"ok","implicit":false,"records":[{"preference":10,"exchange":"mx.a.test"}],"hosts":{"mx.a.test":["192.0.2.1"]}}`,
		`{"domain":"b.test","kind":"nxdomain","result":"nxdomain","implicit":false,"records":[],"hosts":{}}`,
		`{"domain":"c.test","kind":"null-mx","result":"null-mx","implicit":false,"records":[{"preference":0,"exchange":"."}],"hosts":{}}`,
		`{"domain":"d.test","kind":"own","result":"ok","implicit":false,"records":[{"preference":10,"exchange":"mx.d.test"}],"hosts":{"mx.d.test":["192.0.2.4"]}}`,
		`{"domain":"e.test","kind":"own","result":"ok","implicit":false,"records":[{"preference":10,"exchange":"mx.e.test"}],"hosts":{"mx.e.test":["192.0.2.5"]}}`,
	}, "\n")+"\n")
	okA := `{"schema":1,"domain":"a.test","result":"ok","implicit":false,"records":[{"preference":10,"exchange":"mx.a.test","ttl":3600}],"tiers":[{"preference":10,"hosts":[{"name":"mx.a.test","addresses":["192.0.2.1"],"problems":[]}]}]}`
	for _, c := range []struct {
		name                                      string
		out                                       string
		correct, missing, dups, unknown, wrongIDs int
	}{
		{"all correct but missing ones", okA + "\n" + `{"domain":"b.test","result":"nxdomain","records":[]}` + "\n", 2, 3, 0, 0, 0},
		{"wrong result", `{"domain":"b.test","result":"error","error":"time-out"}` + "\n", 0, 4, 0, 0, 1},
		{"a domain twice is not correct", okA + "\n" + okA + "\n", 0, 4, 1, 0, 1},
		{"unknown domain and garbage", `{"domain":"z.test","result":"ok"}` + "\nnot json\n", 0, 5, 0, 1, 2},
		{"wrong address", `{"domain":"d.test","result":"ok","records":[{"preference":10,"exchange":"mx.d.test"}],"tiers":[{"preference":10,"hosts":[{"name":"mx.d.test","addresses":["192.0.2.9"]}]}]}` + "\n", 0, 4, 0, 0, 1},
	} {
		rep, err := checkOutput(truthFile, write(t, "out.jsonl", c.out))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if rep.Expected != 5 || rep.Correct != c.correct || rep.Missing != c.missing || rep.Duplicates != c.dups || rep.Unknown != c.unknown || len(rep.Wrong) != c.wrongIDs {
			t.Errorf("%s: got %+v, want correct %d, missing %d, duplicates %d, unknown %d, %d kinds of wrong",
				c.name, rep, c.correct, c.missing, c.dups, c.unknown, c.wrongIDs)
		}
	}
	if _, err := checkOutput(filepath.Join(t.TempDir(), "none"), truthFile); err == nil {
		t.Error("a missing truth file gave no error")
	}
}

func TestDnsperfBest(t *testing.T) {
	a := write(t, "a", "Statistics:\n  Queries per second:   68679.336806\n")
	b := write(t, "b", "Statistics:\n  Queries per second:   99329.18\n")
	bad := write(t, "c", "dnsperf: could not open file\n")
	if err := dnsperfBest([]string{a, b}); err != nil {
		t.Errorf("two reports: %v", err)
	}
	if err := dnsperfBest([]string{a, bad}); err == nil {
		t.Error("a report without a rate gave no error")
	}
	if v, err := bestQPS([]string{a, b}); err != nil || v != 99329.18 {
		t.Errorf("bestQPS = %v, %v; want 99329.18", v, err)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:53": true, "[::1]:5353": true, "192.0.2.1:53": false, "localhost:53": false} {
		if err := loopback(addr); (err == nil) != ok {
			t.Errorf("loopback(%q) = %v, want ok %v", addr, err, ok)
		}
	}
}

func TestMember(t *testing.T) {
	b := []byte(`{"a": 1, "dns": {"queries": {"sent": 42}}, "s": "x"}`)
	for key, want := range map[string]string{"a": "1", "dns.queries.sent": "42", "s": "x"} {
		if got, err := member(b, key); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", key, got, err, want)
		}
	}
	for _, key := range []string{"b", "dns.queries.lost", "a.b"} {
		if got, err := member(b, key); err == nil {
			t.Errorf("%s: %q, want an error", key, got)
		}
	}
}
