package mtasts

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
)

const goodPolicy = "version: STSv1\nmode: enforce\nmx: mx1.good.test\nmx: *.backup.test\nmax_age: 604800\n"

// policyServer serves a policy per host name, as many domains' policy
// hosts would.
func policyServer(t *testing.T, routes map[string]http.HandlerFunc) http.Handler {
	t.Helper()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		h, ok := routes[strings.TrimPrefix(host, "mta-sts.")]
		if !ok || r.URL.Path != WellKnownPath {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	})
}

func serve(contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{contentType}
		if contentType == "" {
			w.Header()["Content-Type"] = nil // no sniffing either
		}
		w.Write([]byte(body))
	}
}

// fetchWorld is a set of policy hosts on loopback: every domain resolves
// through a test zone, the good hosts share a server whose certificate a
// test CA issued, and the broken ones get their own.
type fetchWorld struct {
	ca      *testCA
	zones   resolve.Resolver
	dialer  loopDialer
	fetcher *Fetcher
}

const fetchZone = `
$ORIGIN test.
@               3600 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300
mta-sts.good       A 127.0.0.1
mta-sts.crlf       A 127.0.0.1
mta-sts.upper      A 127.0.0.1
mta-sts.redirect   A 127.0.0.1
mta-sts.notfound   A 127.0.0.1
mta-sts.html       A 127.0.0.1
mta-sts.untyped    A 127.0.0.1
mta-sts.biglength  A 127.0.0.1
mta-sts.bigchunked A 127.0.0.1
mta-sts.slow       A 127.0.0.1
mta-sts.slowbody   A 127.0.0.1
mta-sts.invalid    A 127.0.0.1
mta-sts.selfsigned A 127.0.0.2
mta-sts.wrongname  A 127.0.0.3
mta-sts.refused    A 127.0.0.4
mta-sts.v6only     AAAA ::1
`

var goodHosts = []string{"good", "crlf", "upper", "redirect", "notfound", "html", "untyped", "biglength", "bigchunked", "slow", "slowbody", "invalid", "v6only"}

func newFetchWorld(t *testing.T) *fetchWorld {
	t.Helper()
	zones, err := resolve.ParseZones(strings.NewReader(fetchZone), "fetch")
	if err != nil {
		t.Fatal(err)
	}
	w := &fetchWorld{ca: newTestCA(t), zones: zones}
	big := strings.Repeat("x-padding: 0123456789abcdef0123456789abcdef\n", MaxPolicySize/40)
	routes := map[string]http.HandlerFunc{
		"good.test":  serve("text/plain", goodPolicy),
		"crlf.test":  serve("text/plain; charset=utf-8", strings.ReplaceAll(goodPolicy, "\n", "\r\n")),
		"upper.test": serve("Text/Plain;charset=\"us-ascii\"", goodPolicy),
		"redirect.test": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://mta-sts.good.test"+WellKnownPath, http.StatusMovedPermanently)
		},
		"html.test":    serve("text/html", goodPolicy),
		"untyped.test": serve("", goodPolicy),
		"biglength.test": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", strconv.Itoa(len(goodPolicy+big)))
			w.Write([]byte(goodPolicy + big))
		},
		"bigchunked.test": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte(goodPolicy))
			w.(http.Flusher).Flush() // chunked: no Content-Length
			w.Write([]byte(big))
		},
		"slow.test": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		},
		"slowbody.test": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("version: STSv1\n"))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		},
		"invalid.test": serve("text/plain", "version: STSv1\nmode: enforce\nmx: mx1.invalid.test\n"),
		"v6only.test":  serve("text/plain", goodPolicy),
	}
	var names []string
	for _, h := range goodHosts {
		names = append(names, "mta-sts."+h+".test")
	}
	good := startTLS(t, w.ca.leaf(t, names...), policyServer(t, routes))
	selfSigned := startTLS(t, (*testCA)(nil).leaf(t, "mta-sts.selfsigned.test"), policyServer(t, routes))
	wrongName := startTLS(t, w.ca.leaf(t, "www.wrongname.test"), policyServer(t, routes))
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	w.dialer = loopDialer{"127.0.0.1": good, "::1": good, "127.0.0.2": selfSigned, "127.0.0.3": wrongName, "127.0.0.4": closedAddr}
	// Generous, so a loaded machine does not fail the good cases; the slow
	// cases set a short one.
	w.fetcher = &Fetcher{Resolver: zones, Dialer: w.dialer, RootCAs: w.ca.pool, Timeout: 20 * time.Second}
	return w
}

func TestFetch(t *testing.T) {
	w := newFetchWorld(t)
	want, err := ParsePolicy(goodPolicy)
	if err != nil {
		t.Fatal(err)
	}
	// A client that follows redirects and dials the test servers: Fetch
	// must still refuse to follow.
	following := &http.Client{
		Transport: &http.Transport{
			DialContext:     loopDialer{"mta-sts.redirect.test": w.dialer["127.0.0.1"], "mta-sts.good.test": w.dialer["127.0.0.1"]}.DialContext,
			TLSClientConfig: &tls.Config{RootCAs: w.ca.pool},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return nil },
	}
	for _, tt := range []struct {
		domain    string
		client    *http.Client
		short     bool  // a 300 ms deadline
		wantStage Stage // "" for success
		wantErr   error
	}{
		{domain: "good.test"},
		{domain: "crlf.test"},
		{domain: "upper.test"},
		{domain: "v6only.test"},
		{domain: "good.test", client: following},
		{domain: "redirect.test", wantStage: StageRedirect, wantErr: ErrRedirect},
		{domain: "redirect.test", client: following, wantStage: StageRedirect, wantErr: ErrRedirect},
		{domain: "notfound.test", wantStage: StageStatus, wantErr: ErrHTTPStatus},
		{domain: "html.test", wantStage: StageContentType, wantErr: ErrContentType},
		{domain: "untyped.test", wantStage: StageContentType, wantErr: ErrContentType},
		{domain: "biglength.test", wantStage: StageSize, wantErr: ErrTooLarge},
		{domain: "bigchunked.test", wantStage: StageSize, wantErr: ErrTooLarge},
		{domain: "slow.test", short: true, wantStage: StageTimeout},
		{domain: "slowbody.test", short: true, wantStage: StageTimeout},
		{domain: "selfsigned.test", wantStage: StageTLS},
		{domain: "wrongname.test", wantStage: StageTLS},
		{domain: "refused.test", wantStage: StageConnect},
		{domain: "nohost.test", wantStage: StageDNS, wantErr: ErrNoAddress},
		{domain: "invalid.test", wantErr: ErrPolicySyntax},
	} {
		name := tt.domain
		if tt.client != nil {
			name += "/own-client"
		}
		t.Run(name, func(t *testing.T) {
			f := *w.fetcher
			f.Client = tt.client
			if tt.short {
				f.Timeout = 300 * time.Millisecond
			}
			start := time.Now()
			p, text, err := f.Fetch(t.Context(), dnsname.MustParse(tt.domain))
			if elapsed := time.Since(start); tt.short && elapsed > 5*time.Second {
				t.Errorf("Fetch took %v: the deadline did not hold", elapsed)
			}
			fe, isFetchErr := errors.AsType[*FetchError](err)
			switch {
			case tt.wantStage == "" && tt.wantErr == nil:
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				if p.String() != want.String() {
					t.Errorf("policy = %q, want %q", p, want)
				}
				if !strings.HasPrefix(text, "version: STSv1") {
					t.Errorf("text = %q", text)
				}
			case tt.wantStage == "":
				if isFetchErr || !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want a parse error wrapping %v", err, tt.wantErr)
				}
				if p != nil || text == "" {
					t.Errorf("policy = %v, text = %q: want no policy and the text served", p, text)
				}
			default:
				if !isFetchErr {
					t.Fatalf("err = %v (%T), want a *FetchError at %s", err, err, tt.wantStage)
				}
				if fe.Stage != tt.wantStage {
					t.Errorf("stage = %s, want %s (%v)", fe.Stage, tt.wantStage, err)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want it to wrap %v", err, tt.wantErr)
				}
				if p != nil {
					t.Errorf("policy returned with an error: %v", p)
				}
			}
		})
	}
}

func TestFetchRedirectMessage(t *testing.T) {
	w := newFetchWorld(t)
	_, _, err := w.fetcher.Fetch(t.Context(), "redirect.test")
	if err == nil || !strings.Contains(err.Error(), "https://mta-sts.good.test"+WellKnownPath) {
		t.Errorf("err = %v, want it to name where the redirect pointed", err)
	}
}

func TestMediaType(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"text/plain", "text/plain"},
		{"text/plain; charset=utf-8", "text/plain"},
		{"TEXT/PLAIN", "text/plain"},
		{"text/plain; charset", "text/plain"}, // malformed parameter
		{"text/html", "text/html"},
		{"", ""},
	} {
		if got := mediaType(tt.in); got != tt.want {
			t.Errorf("mediaType(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// portDialer sends every connection to its address on another port,
// through d: the address policy of d is checked on the real address.
type portDialer struct {
	d    dial.Dialer
	port string
}

func (p portDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	return p.d.DialContext(ctx, network, net.JoinHostPort(host, p.port))
}

// TestFetchForbidden: through a Dialer whose policy refuses non-public
// addresses, a policy host on loopback is never connected to; the failure
// is the forbidden stage, and the finding mta-sts-fetch-refused names the
// address and its range instead of mta-sts-policy-unreachable.
func TestFetchForbidden(t *testing.T) {
	w := newFetchWorld(t)
	var accepted atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	f := &Fetcher{Resolver: w.zones, Dialer: portDialer{&dial.Net{Policy: &dial.Policy{}}, port}, Timeout: 10 * time.Second}
	for _, domain := range []dnsname.Name{"good.test", "v6only.test"} {
		_, _, err := f.Fetch(t.Context(), domain)
		fe, ok := errors.AsType[*FetchError](err)
		if !ok || fe.Stage != StageForbidden || !errors.Is(err, dial.ErrForbidden) {
			t.Fatalf("%s: %v, want the forbidden stage", domain, err)
		}
		fs := Findings(&Result{Domain: string(domain), TXT: []string{"v=STSv1; id=1"}, PolicyURL: PolicyURL(domain), FetchErr: err}, nil)
		if len(fs) != 1 || fs[0].ID != finding.MTASTSRefused || fs[0].Severity != finding.Info {
			t.Fatalf("%s: findings %+v", domain, fs)
		}
		if !strings.Contains(fs[0].Message, "is not a public address (loopback,") {
			t.Errorf("%s: %q", domain, fs[0].Message)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the policy server accepted %d connections", n)
	}
	// Without the policy, the same dialer reaches the server.
	f.Dialer = portDialer{&dial.Net{}, port}
	if _, _, err := f.Fetch(t.Context(), "good.test"); errors.Is(err, dial.ErrForbidden) || accepted.Load() == 0 {
		t.Errorf("without a policy: %v, %d connections", err, accepted.Load())
	}
}
