package smtptest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mxtrace/mxtrace/mtasts"
)

// PolicyHost is an MTA-STS policy host (RFC 8461 §3.3) on loopback: it
// serves one policy over HTTPS at the well-known path, for tests of the
// senders that must honour it (send, relay). Every other path is 404.
type PolicyHost struct {
	srv *httptest.Server
}

// StartPolicyHost serves policy with the certificate cert (issue it for
// mta-sts.DOMAIN: RFC 8461 §3.3 has the sender check it) until the test
// ends.
func StartPolicyHost(tb testing.TB, cert tls.Certificate, policy string) *PolicyHost {
	tb.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != mtasts.WellKnownPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, policy)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	return &PolicyHost{srv: srv}
}

// Port is the TCP port the host listens on, on 127.0.0.1 (for
// mxtrace's --mta-sts-port).
func (h *PolicyHost) Port() int { return h.srv.Listener.Addr().(*net.TCPAddr).Port }

// DialContext connects to the policy host whatever address is asked:
// as an mtasts.Fetcher's Dialer it stands in for port 443 of the
// address the fetcher resolved for mta-sts.DOMAIN, so the name, the
// certificate check and the HTTP request are the real ones.
func (h *PolicyHost) DialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, network, h.srv.Listener.Addr().String())
}
