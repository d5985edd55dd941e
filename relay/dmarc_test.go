package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/mxtrace/mxtrace/resolve"
)

// The DMARC test world: 192.0.2.1 may send for every domain's SPF,
// 192.0.2.66 for none. The DKIM key of every signer is the test's.
const dmarcZone = `
$ORIGIN example.
@                 300 SOA ns hostmaster 1 7200 900 1209600 300
reject            TXT "v=spf1 ip4:192.0.2.1 -all"
bounce.reject     TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.reject     TXT "v=DMARC1; p=reject"
strict            TXT "v=spf1 ip4:192.0.2.1 -all"
bounce.strict     TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.strict     TXT "v=DMARC1; p=reject; aspf=s; adkim=s"
org               TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.org        TXT "v=DMARC1; p=reject; sp=none"
quar              TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.quar       TXT "v=DMARC1; p=quarantine"
pct               TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.pct        TXT "v=DMARC1; p=reject; pct=50"
nopolicy          TXT "v=spf1 ip4:192.0.2.1 -all"
other             TXT "v=spf1 ip4:192.0.2.1 -all"
tempdmarc         TXT "v=spf1 ip4:192.0.2.1 -all"
`

// failing answers SERVFAIL for the names in fail, and asks next for the rest.
type failing struct {
	next resolve.Resolver
	fail map[string]bool
}

func (f failing) Lookup(ctx context.Context, q resolve.Question) (*resolve.Answer, error) {
	if f.fail[q.Name] {
		return nil, &resolve.Error{Question: q, Rcode: 2, Err: resolve.ErrServerFailure}
	}
	return f.next.Lookup(ctx, q)
}

type dmarcWorld struct {
	auth *Authenticator
	key  ed25519.PrivateKey
}

func newDMARCWorld(t *testing.T) *dmarcWorld {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rec := `"v=DKIM1; k=ed25519; p=` + base64.StdEncoding.EncodeToString(pub) + `"`
	var z strings.Builder
	z.WriteString(dmarcZone)
	for _, d := range []string{"reject", "strict", "sub.strict", "org", "sub.org", "quar", "other", "tempkey.reject"} {
		z.WriteString("s._domainkey." + d + " TXT " + rec + "\n")
	}
	r := failing{next: zones(t, z.String()), fail: map[string]bool{
		"_dmarc.tempdmarc.example.":            true,
		"s._domainkey.tempkey.example.":        true,
		"s._domainkey.tempkey.reject.example.": true,
		"tempspf.reject.example.":              true,
	}}
	return &dmarcWorld{auth: newAuth(r), key: key}
}

// message builds a message; signer "" leaves it unsigned.
func (w *dmarcWorld) message(t *testing.T, header, signer string) []byte {
	t.Helper()
	msg := []byte(strings.ReplaceAll(header, "\n", "\r\n") + "Subject: test\r\n\r\nHello.\r\n")
	if signer == "" {
		return msg
	}
	var b bytes.Buffer
	if err := dkim.Sign(&b, bytes.NewReader(msg), &dkim.SignOptions{Domain: signer, Selector: "s", Signer: w.key}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCheckMessageDMARC(t *testing.T) {
	w := newDMARCWorld(t)
	ctx := context.Background()
	const pass, fail = "192.0.2.1", "192.0.2.66"
	tests := []struct {
		name         string
		client, from string // SMTP client and MAIL FROM
		header       string
		signer       string
		tamper       bool
		sample       int
		code         int
		reason       string
		results      []string // substrings of the unfolded Authentication-Results
	}{
		{name: "spf aligned relaxed", client: pass, from: "b@bounce.reject.example", header: "From: A <a@reject.example>\n",
			results: []string{"spf=pass", "dmarc=pass header.from=reject.example"}},
		{name: "spf fail, no dkim, p=reject", client: fail, from: "b@reject.example", header: "From: a@reject.example\n",
			code: 550, reason: "dmarc-reject", results: nil},
		{name: "spf pass unaligned, p=reject", client: pass, from: "b@other.example", header: "From: a@reject.example\n",
			code: 550, reason: "dmarc-reject"},
		{name: "dkim aligned", client: fail, from: "b@other.example", header: "From: a@reject.example\n", signer: "reject.example",
			results: []string{"spf=fail", "dkim=pass header.d=reject.example", "dmarc=pass"}},
		{name: "dkim tampered", client: fail, from: "b@other.example", header: "From: a@reject.example\n", signer: "reject.example", tamper: true,
			code: 550, reason: "dmarc-reject"},
		{name: "dkim unaligned", client: fail, from: "b@other.example", header: "From: a@reject.example\n", signer: "other.example",
			code: 550, reason: "dmarc-reject"},
		{name: "strict spf", client: pass, from: "b@bounce.strict.example", header: "From: a@strict.example\n",
			code: 550, reason: "dmarc-reject"},
		{name: "strict dkim subdomain", client: fail, from: "", header: "From: a@strict.example\n", signer: "sub.strict.example",
			code: 550, reason: "dmarc-reject"},
		{name: "strict dkim exact", client: fail, from: "", header: "From: a@strict.example\n", signer: "strict.example",
			results: []string{"dmarc=pass"}},
		{name: "sp=none for a subdomain", client: fail, from: "b@sub.org.example", header: "From: a@sub.org.example\n",
			results: []string{"dmarc=fail", "policy none"}},
		{name: "p=reject at the org domain", client: fail, from: "b@org.example", header: "From: a@org.example\n",
			code: 550, reason: "dmarc-reject"},
		{name: "quarantine accepted", client: fail, from: "b@quar.example", header: "From: a@quar.example\n",
			results: []string{"dmarc=fail", "policy quarantine"}},
		{name: "pct selects", client: fail, from: "b@pct.example", header: "From: a@pct.example\n", sample: 49,
			code: 550, reason: "dmarc-reject"},
		{name: "pct spares", client: fail, from: "b@pct.example", header: "From: a@pct.example\n", sample: 50,
			results: []string{"dmarc=fail", "policy quarantine"}},
		{name: "no dmarc record", client: fail, from: "b@nopolicy.example", header: "From: a@nopolicy.example\n",
			results: []string{"dmarc=none header.from=nopolicy.example"}},
		{name: "no From", client: fail, from: "b@reject.example", header: "To: x@y.example\n",
			results: []string{"dmarc=none", "no From field"}},
		{name: "two From fields", client: pass, from: "b@reject.example", header: "From: a@reject.example\nfrom : a@quar.example\n",
			code: 550, reason: "from-invalid"},
		{name: "From without a domain", client: pass, from: "b@reject.example", header: "From: undisclosed\n",
			code: 550, reason: "from-invalid"},
		{name: "From in obsolete syntax", client: fail, from: "b@other.example", header: "From: \xff\xfe <a@reject.example>\n",
			code: 550, reason: "dmarc-reject"},
		{name: "one From, two domains, one fails", client: pass, from: "b@quar.example", header: "From: a@quar.example,\n b@reject.example\n",
			code: 550, reason: "dmarc-reject", results: []string{}},
		{name: "one From, two domains, both pass", client: fail, from: "", header: "From: a@reject.example, b@reject.example\n", signer: "reject.example",
			results: []string{"dmarc=pass"}},
		{name: "policy lookup tempfail", client: fail, from: "b@tempdmarc.example", header: "From: a@tempdmarc.example\n",
			code: 451, reason: "dmarc-temperror"},
		{name: "policy lookup tempfail, spf aligned", client: pass, from: "b@tempdmarc.example", header: "From: a@tempdmarc.example\n",
			results: []string{"spf=pass", "dmarc=temperror"}},
		{name: "dkim key tempfail, p=reject", client: fail, from: "b@other.example", header: "From: a@reject.example\n", signer: "tempkey.reject.example",
			code: 451, reason: "dmarc-temperror", results: []string{"dkim=temperror"}},
		{name: "spf tempfail, p=reject", client: fail, from: "b@tempspf.reject.example", header: "From: a@reject.example\n",
			code: 451, reason: "dmarc-temperror"},
		{name: "unaligned spf tempfail, p=reject", client: fail, from: "b@nowhere.invalid", header: "From: a@reject.example\n",
			code: 550, reason: "dmarc-reject", results: []string{"spf=temperror"}},
		{name: "unaligned dkim tempfail, p=reject", client: fail, from: "b@other.example", header: "From: a@reject.example\n", signer: "tempkey.example",
			code: 550, reason: "dmarc-reject"},
		{name: "spf tempfail, p=quarantine", client: fail, from: "b@nowhere.invalid", header: "From: a@quar.example\n",
			results: []string{"spf=temperror", "dmarc=fail"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w.auth.Sample = func() int { return tc.sample }
			sc := w.auth.CheckSender(ctx, netip.MustParseAddr(tc.client), "mx.sender.example", tc.from)
			data := w.message(t, tc.header, tc.signer)
			if tc.tamper {
				data = bytes.Replace(data, []byte("Hello."), []byte("Hullo."), 1)
			}
			v, fields := w.auth.CheckMessage(ctx, sc, data)
			if v.Code != tc.code || v.Reason != tc.reason {
				t.Errorf("verdict %q (%s), want %d %s; fields %q", v.Error(), v.Reason, tc.code, tc.reason, fields)
			}
			if v.Code == 550 && v.Enhanced != "5.7.1" || v.Code == 451 && v.Enhanced != "4.7.0" {
				t.Errorf("enhanced code %s for %d", v.Enhanced, v.Code)
			}
			if tc.reason == "from-invalid" {
				return
			}
			if len(fields) != 1 || !strings.HasPrefix(fields[0], "Authentication-Results: relay.example;") {
				t.Fatalf("fields %q, want one Authentication-Results", fields)
			}
			checkFolded(t, fields[0])
			unfolded := strings.ReplaceAll(fields[0], "\r\n", "")
			if _, _, err := authres.Parse(strings.TrimPrefix(unfolded, "Authentication-Results:")); err != nil {
				t.Errorf("%q does not parse: %v", unfolded, err)
			}
			for _, want := range tc.results {
				if !strings.Contains(unfolded, want) {
					t.Errorf("%q lacks %q", unfolded, want)
				}
			}
		})
	}
}

// FuzzAuthorDomains: a hostile header never panics, and a From domain
// found is a canonical name.
func FuzzAuthorDomains(f *testing.F) {
	f.Add([]byte("From: a@b.example\r\nTo: c@d.example\r\n\r\nbody"))
	f.Add([]byte("From: \"x\" <a@b.example>, c@d.example\r\n\tcontinued\r\nfrom : y@z.example\n\n"))
	f.Add([]byte(" leading continuation\nFrom:<@>\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		domains, err := authorDomains(headerSection(data))
		if err != nil {
			return
		}
		if len(domains) > MaxFromDomains {
			t.Fatalf("%d domains", len(domains))
		}
		for _, d := range domains {
			if string(d) != strings.ToLower(string(d)) || strings.HasSuffix(string(d), ".") {
				t.Fatalf("not canonical: %q", d)
			}
		}
	})
}
