package serve

import (
	"bufio"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/probe"
)

// scrape reads /metrics into series (name and labels as written) → value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		series[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return series
}

func TestMetrics(t *testing.T) {
	cfg := testConfig(t)
	cfg.Rate, cfg.Burst = 0.001, 3
	cfg.TrustProxy = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	_, base := serveTest(t, cfg, nil)
	before := scrape(t, base)

	fetch(t, base+"/healthz")
	fetch(t, base+"/healthz")
	route := base + "/api/v1/route/example.test"
	fetch(t, route, "X-Forwarded-For", "192.0.2.1") // a miss, then the answers are cached
	fetch(t, route, "X-Forwarded-For", "192.0.2.1") // hits
	fetch(t, route, "X-Forwarded-For", "192.0.2.1")
	// No route: answered 404 by the mux, spending no token.
	fetch(t, base+"/nowhere", "X-Forwarded-For", "192.0.2.1")
	if resp := fetch(t, route, "X-Forwarded-For", "192.0.2.1"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth request of a burst of 3: %d", resp.StatusCode)
	}
	after := scrape(t, base)

	delta := func(series string) float64 { return after[series] - before[series] }
	for series, want := range map[string]float64{
		`mxtrace_http_requests_total{code="200",route="GET /healthz"}`:               2,
		`mxtrace_http_requests_total{code="200",route="GET /api/v1/route/{domain}"}`: 3,
		`mxtrace_http_requests_total{code="429",route="GET /api/v1/route/{domain}"}`: 1,
		`mxtrace_http_requests_total{code="404",route="none"}`:                       1,
		`mxtrace_http_request_duration_seconds_count{route="GET /healthz"}`:          2,
		`mxtrace_http_rate_limited_total`:                                            1,
		`mxtrace_findings_total{id="mx-single-point"}`:                               3,
		`mxtrace_findings_total{id="mx-no-ipv6"}`:                                    3,
		`mxtrace_checks_in_flight`:                                                   0,
	} {
		if got := delta(series); got != want {
			t.Errorf("%s went up by %v, want %v", series, got, want)
		}
	}
	if delta(`mxtrace_dns_cache_lookups_total{result="miss"}`) < 1 || delta(`mxtrace_dns_cache_lookups_total{result="hit"}`) < 1 {
		t.Errorf("cache lookups: miss +%v, hit +%v; want both", delta(`mxtrace_dns_cache_lookups_total{result="miss"}`),
			delta(`mxtrace_dns_cache_lookups_total{result="hit"}`))
	}
	if r := after["mxtrace_dns_cache_hit_ratio"]; r <= 0 || r >= 1 {
		t.Errorf("hit ratio %v, want strictly between 0 and 1", r)
	}
	if _, ok := after["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}

// TestObserveCheck: findings by ID, the refused targets among them, and
// SMTP probe outcomes, from one check report.
func TestObserveCheck(t *testing.T) {
	m := newMetrics(nil, nil)
	m.observeCheck(&check.Report{
		Findings: []finding.Finding{{ID: "smtp-target-refused"}, {ID: "smtp-target-refused"}, {ID: "mta-sts-fetch-refused"}, {ID: "spf-missing"}},
		Details: &check.Facts{SMTP: []*probe.Result{
			{}, {Err: &probe.StepError{Kind: probe.KindForbidden}}, {Err: &probe.StepError{Kind: probe.KindTimeout}}, {},
		}},
	})
	m.observeCheck(nil)
	for name, tt := range map[string]struct {
		c    prometheus.Counter
		want float64
	}{
		"findings spf-missing":          {m.findings.WithLabelValues("spf-missing"), 1},
		"findings smtp-target-refused":  {m.findings.WithLabelValues("smtp-target-refused"), 2},
		"refused smtp-target-refused":   {m.refused.WithLabelValues("smtp-target-refused"), 2},
		"refused mta-sts-fetch-refused": {m.refused.WithLabelValues("mta-sts-fetch-refused"), 1},
		"refused spf-missing":           {m.refused.WithLabelValues("spf-missing"), 0},
		"smtp ok":                       {m.smtp.WithLabelValues("ok"), 2},
		"smtp forbidden":                {m.smtp.WithLabelValues("forbidden"), 1},
		"smtp timeout":                  {m.smtp.WithLabelValues("timeout"), 1},
	} {
		var pb dto.Metric
		if err := tt.c.Write(&pb); err != nil {
			t.Fatal(err)
		}
		if got := pb.GetCounter().GetValue(); got != tt.want {
			t.Errorf("%s: %v, want %v", name, got, tt.want)
		}
	}
}
