package report

import "testing"

func TestPlain(t *testing.T) {
	for in, want := range map[string]string{
		"spf: not a usable domain name: \"a..b\" has an empty label":  "not a usable domain name: \"a..b\" has an empty label",
		"dmarc: lookup _dmarc.d.test. TXT: server failure (SERVFAIL)": "lookup _dmarc.d.test. TXT: server failure (SERVFAIL)",
		"record at d.test: spf: spf: syntax error: x":                 "record at d.test: syntax error: x",
		"banner: timeout":                                                 "banner: timeout",
		"the probe: a person's words":                                     "the probe: a person's words",
		"include:spf.d.test: no record":                                   "include:spf.d.test: no record",
		"dane: address of mx.d.test: x":                                   "address of mx.d.test: x",
		"nothing to strip":                                                "nothing to strip",
		"fetching: 200 \x1b[2J\x1b]0;x\x07 OK":                            `fetching: 200 \x1b[2J\x1b]0;x\x07 OK`,
		"lookup b. A: x\nlookup b. AAAA: y":                               "lookup b. A: x; lookup b. AAAA: y",
		"mta-sts: lookup _mta-sts.d.test. TXT: x":                         "lookup _mta-sts.d.test. TXT: x",
		"--zone: resolve: x.zone: dns: not a TTL: \"here\" at line: 1:12": "--zone: x.zone: not a TTL: \"here\" at line: 1:12",
	} {
		if got := Plain(in); got != want {
			t.Errorf("Plain(%q) = %q, want %q", in, got, want)
		}
	}
}
