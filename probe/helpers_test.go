package probe

import (
	"crypto/tls"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxtrace/mxtrace/dial"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/smtptest"
	"github.com/mxtrace/mxtrace/internal/testpki"
)

// pki is a test CA and a certificate for mx.example.test issued by it.
type pki struct {
	ca   *testpki.CA
	cert tls.Certificate
}

func newPKI(t *testing.T, names ...string) *pki {
	t.Helper()
	if len(names) == 0 {
		names = []string{"mx.example.test"}
	}
	ca := testpki.NewCA(t, "mxtrace test root")
	return &pki{ca: ca, cert: ca.Leaf(t, testpki.LeafOptions{Names: names})}
}

func serverTLS(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: certs}
}

// quick is a Prober with short deadlines for tests of hostile servers.
func quick(port int, roots *testpki.CA) *Prober {
	p := &Prober{
		Port:      port,
		HelloName: "probe.example.test",
		Timeouts: dial.SMTPTimeouts{Connect: 2 * time.Second, Greeting: time.Second,
			Command: time.Second, TLSHandshake: time.Second},
		SlowBanner: 5 * time.Second,
	}
	if roots != nil {
		p.RootCAs = roots.Pool
	}
	return p
}

// startTLSServer runs a well-behaved server with STARTTLS on addr.
func startTLSServer(t *testing.T, addr string, cert tls.Certificate, host string) *smtptest.Server {
	t.Helper()
	return smtptest.Start(t, smtptest.Options{Addr: addr, Hostname: host, TLS: serverTLS(cert)})
}

func ids(fs []finding.Finding) []finding.ID {
	out := []finding.ID{}
	for _, f := range fs {
		out = append(out, f.ID)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func sentVerbs(r *Result) []string {
	var v []string
	for _, l := range r.Transcript {
		if l.Dir == "C" {
			v = append(v, strings.ToUpper(verb(l.Text)))
		}
	}
	return v
}

// noData fails the test if the probe sent DATA (docs/security.md#probe-and-check-never-send).
func noData(t *testing.T, r *Result) {
	t.Helper()
	if slices.Contains(sentVerbs(r), "DATA") {
		t.Errorf("the probe sent DATA: %v", sentVerbs(r))
	}
}

func addrOf(ap netip.AddrPort) netip.Addr { return ap.Addr() }
