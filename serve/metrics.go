package serve

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/scan"
)

// metrics are the server's Prometheus metrics, on a registry of its own
// (never the global default, so two Servers in one process, as in tests,
// do not share counters). Every label takes its values from a closed set:
// route patterns, status codes, finding IDs, probe outcome kinds.
type metrics struct {
	reg *prometheus.Registry
	// more are the caller's metrics (Config.Metrics), nil for none.
	more prometheus.Gatherer

	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	rateLimited prometheus.Counter
	saturated   prometheus.Counter
	panics      prometheus.Counter
	inFlight    prometheus.Gauge
	findings    *prometheus.CounterVec
	refused     *prometheus.CounterVec
	smtp        *prometheus.CounterVec
}

// cacheStats is what a shared DNS cache (resolve.Cache) tells about
// itself.
type cacheStats interface{ Stats() resolve.CacheStats }

func newMetrics(r resolve.Resolver, more prometheus.Gatherer) *metrics {
	m := &metrics{
		reg:  prometheus.NewRegistry(),
		more: more,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxtrace_http_requests_total",
			Help: "HTTP requests answered, by route pattern (none: no route matched) and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mxtrace_http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer, by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrace_http_rate_limited_total",
			Help: "Requests refused with 429 because their client's token bucket was empty.",
		}),
		saturated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrace_http_saturated_total",
			Help: "Requests refused with 503 because every slot for checks was taken.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrace_http_panics_total",
			Help: "Handler panics recovered (answered 500).",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mxtrace_checks_in_flight",
			Help: "Expensive jobs (checks, probes, scans, event streams, report pages) running now.",
		}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxtrace_findings_total",
			Help: "Findings reported, by finding ID.",
		}, []string{"id"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxtrace_refused_targets_total",
			Help: "Targets the dialer refused to connect to (non-public addresses), by finding ID.",
		}, []string{"id"}),
		smtp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxtrace_smtp_probes_total",
			Help: "SMTP probes of one address, by outcome: ok, or the kind of error that ended the session.",
		}, []string{"outcome"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.rateLimited, m.saturated, m.panics, m.inFlight,
		m.findings, m.refused, m.smtp,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if c, ok := r.(cacheStats); ok {
		m.reg.MustRegister(cacheCollector{c})
	}
	return m
}

// handler serves the registry, and the caller's metrics after it, in the
// exposition format.
func (m *metrics) handler() http.Handler {
	if m.more == nil {
		return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	}
	return promhttp.HandlerFor(prometheus.Gatherers{m.reg, m.more}, promhttp.HandlerOpts{})
}

// request counts one answered request.
func (m *metrics) request(pattern string, status int, elapsed time.Duration) {
	if pattern == "" {
		pattern = "none"
	}
	m.requests.WithLabelValues(pattern, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(pattern).Observe(elapsed.Seconds())
}

// observeFindings counts findings by ID; those whose ID ends in
// "-refused" (smtp-target-refused, mta-sts-fetch-refused, ...) are targets
// the dialer would not connect to.
func (m *metrics) observeFindings(fs []finding.Finding) {
	for _, f := range fs {
		id := string(f.ID)
		m.findings.WithLabelValues(id).Inc()
		if strings.HasSuffix(id, "-refused") {
			m.refused.WithLabelValues(id).Inc()
		}
	}
}

// observeSMTP counts probe outcomes.
func (m *metrics) observeSMTP(results []*probe.Result) {
	for _, r := range results {
		outcome := "ok"
		if r.Err != nil {
			outcome = string(r.Err.Kind)
		}
		m.smtp.WithLabelValues(outcome).Inc()
	}
}

// observeCheck counts what a finished check found. Handlers call it once
// per check they ran (the events stream too).
func (m *metrics) observeCheck(r *check.Report) {
	if r == nil {
		return
	}
	m.observeFindings(r.Findings)
	if r.Details != nil {
		m.observeSMTP(r.Details.SMTP)
	}
}

// observeProbe counts what a finished probe found.
func (m *metrics) observeProbe(r *probe.Report) {
	if r == nil {
		return
	}
	m.observeFindings(r.Findings)
	m.observeSMTP(r.Results)
}

// observePlan counts a delivery plan's findings (route, and each scan
// line in route mode).
func (m *metrics) observePlan(p *route.Plan) {
	if p == nil {
		return
	}
	m.observeFindings(p.Findings)
}

// observeJob is job counting what each domain of a scan found. scan
// retries a domain whose lookups failed, so only a complete outcome
// counts, once.
func (m *metrics) observeJob(job scan.Job) scan.Job {
	return func(ctx context.Context, domain dnsname.Name) (any, error) {
		v, err := job(ctx, domain)
		if err != nil {
			return v, err
		}
		switch v := v.(type) {
		case *route.Plan:
			m.observePlan(v)
		case *check.Report:
			m.observeCheck(v)
		}
		return v, err
	}
}

// cacheCollector reads the shared DNS cache's counters at scrape time.
type cacheCollector struct{ c cacheStats }

var (
	cacheLookupsDesc = prometheus.NewDesc("mxtrace_dns_cache_lookups_total",
		"Lookups through the shared DNS cache, by result: hit (answered from the cache), joined (waited for the same "+
			"question already in flight), miss (a query sent to the resolvers).", []string{"result"}, nil)
	cacheRatioDesc = prometheus.NewDesc("mxtrace_dns_cache_hit_ratio",
		"Share of lookups since start that sent no query (hits and joined over all lookups); 0 before any.", nil, nil)
)

func (cc cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheLookupsDesc
	ch <- cacheRatioDesc
}

func (cc cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.c.Stats()
	ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(st.Hits), "hit")
	ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(st.Joined), "joined")
	ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(st.Misses), "miss")
	ratio := 0.0
	if all := st.Hits + st.Joined + st.Misses; all > 0 {
		ratio = float64(st.Hits+st.Joined) / float64(all)
	}
	ch <- prometheus.MustNewConstMetric(cacheRatioDesc, prometheus.GaugeValue, ratio)
}
