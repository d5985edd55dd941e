package main

import (
	"testing"

	"github.com/mxtrace/mxtrace/dial"
)

// TestDialerPolicyReachesEveryConnection: the address policy set on the
// globals (serve's) reaches every outbound path of an audit: the SMTP
// prober, the MTA-STS fetcher and the nameservers' direct questions.
func TestDialerPolicyReachesEveryConnection(t *testing.T) {
	policy := &dial.Policy{}
	g := &globals{policy: policy, ipv4: true}
	a := g.auditor(&dnsCore{}, nil, nil, nil, true)
	if a.Nameservers == nil || a.Nameservers.Policy != policy {
		t.Errorf("nameserver options %+v: policy not passed", a.Nameservers)
	}
	if a.MTASTS == nil || a.MTASTS.Fetcher == nil {
		t.Fatalf("no MTA-STS fetcher")
	}
	if d, ok := a.MTASTS.Fetcher.Dialer.(*dial.Net); !ok || d.Policy != policy || !d.IPv4 {
		t.Errorf("MTA-STS fetcher dialer %#v: not the command's", a.MTASTS.Fetcher.Dialer)
	}
	if d, ok := g.checkProber(nil, "", "").Dialer.(*dial.Net); !ok || d.Policy != policy {
		t.Errorf("prober dialer %#v: not the command's", d)
	}
	if d := (&globals{}).dialer(); d.Policy != nil {
		t.Errorf("the commands' dialer has a policy: %+v", d.Policy)
	}
}
