package relay

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mxtrace/mxtrace/relay/queue"
)

// gather reads reg into series ("name{label=value,...}") → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			series[name] = value(m)
		}
	}
	return series
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return -1
}

func TestMetricsCount(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, nil)
	m.Accepted(1000)
	m.Accepted(24)
	m.RcptRefused("not-our-domain")
	m.RcptRefused("not-our-domain")
	m.RcptRefused("unknown-recipient")
	m.ConnRefused("max-conns")
	m.MessageRefused("rate")
	m.Delivered()
	m.Delivered()
	m.Failed()
	m.Expired()
	m.Deferred()
	m.Bounced()
	m.PrimaryUp("example.test", true)
	m.PrimaryUp("other.test", true)
	m.PrimaryUp("other.test", false)

	got := gather(t, reg)
	want := map[string]float64{
		"mxtrace_relay_messages_accepted_total":                      2,
		"mxtrace_relay_accepted_bytes_total":                         1024,
		"mxtrace_relay_rcpt_refused_total{reason=not-our-domain}":    2,
		"mxtrace_relay_rcpt_refused_total{reason=unknown-recipient}": 1,
		"mxtrace_relay_connections_refused_total{reason=max-conns}":  1,
		"mxtrace_relay_messages_refused_total{reason=rate}":          1,
		"mxtrace_relay_deliveries_total{result=delivered}":           2,
		"mxtrace_relay_deliveries_total{result=failed}":              1,
		"mxtrace_relay_deliveries_total{result=expired}":             1,
		"mxtrace_relay_deferrals_total":                              1,
		"mxtrace_relay_bounces_total":                                1,
		"mxtrace_relay_primary_up{domain=example.test}":              1,
		"mxtrace_relay_primary_up{domain=other.test}":                0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got["mxtrace_relay_queue_messages"]; ok {
		t.Error("queue figures without a stats function")
	}
}

// TestMetricsNil: the server and the deliverer call a nil *Metrics
// unconditionally.
func TestMetricsNil(t *testing.T) {
	var m *Metrics
	m.Accepted(1)
	m.RcptRefused("x")
	m.ConnRefused("x")
	m.Delivered()
	m.Failed()
	m.Expired()
	m.Deferred()
	m.Bounced()
	m.PrimaryUp("example.test", true)
}

// TestMetricsTwoRegistries: no global state, so two relays in one process
// (as in tests) each count their own.
func TestMetricsTwoRegistries(t *testing.T) {
	r1, r2 := prometheus.NewRegistry(), prometheus.NewRegistry()
	NewMetrics(r1, nil).Accepted(5)
	NewMetrics(r2, nil)
	if got := gather(t, r2)["mxtrace_relay_messages_accepted_total"]; got != 0 {
		t.Errorf("second registry counted %v", got)
	}
	if got := gather(t, r1)["mxtrace_relay_messages_accepted_total"]; got != 1 {
		t.Errorf("first registry counted %v", got)
	}
}

func TestMetricsQueue(t *testing.T) {
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	st := queue.Stats{Messages: 3, Recipients: 7, Held: 1, Oldest: now.Add(-90 * time.Second), Bytes: 4096}
	var fail error
	calls := 0
	reg := prometheus.NewRegistry()
	reg.MustRegister(&queueCollector{now: func() time.Time { return now }, stats: func(ctx context.Context) (queue.Stats, error) {
		calls++
		if _, ok := ctx.Deadline(); !ok {
			t.Error("stats called without a deadline")
		}
		return st, fail
	}})

	got := gather(t, reg)
	want := map[string]float64{
		"mxtrace_relay_queue_readable":           1,
		"mxtrace_relay_queue_messages":           3,
		"mxtrace_relay_queue_recipients":         7,
		"mxtrace_relay_queue_held_messages":      1,
		"mxtrace_relay_queue_bytes":              4096,
		"mxtrace_relay_queue_oldest_age_seconds": 90,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}

	st = queue.Stats{}
	if got := gather(t, reg)["mxtrace_relay_queue_oldest_age_seconds"]; got != 0 {
		t.Errorf("empty queue: age %v, want 0", got)
	}

	fail = errors.New("database is locked")
	got = gather(t, reg)
	if got["mxtrace_relay_queue_readable"] != 0 {
		t.Errorf("unreadable queue: readable = %v", got["mxtrace_relay_queue_readable"])
	}
	if _, ok := got["mxtrace_relay_queue_messages"]; ok {
		t.Error("unreadable queue: figures still reported")
	}
	if calls != 3 {
		t.Errorf("stats read %d times for 3 scrapes", calls)
	}
}

// TestMetricsQueueWired: NewMetrics reads the stats function it was given.
func TestMetricsQueueWired(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg, func(context.Context) (queue.Stats, error) { return queue.Stats{Messages: 2}, nil })
	if got := gather(t, reg)["mxtrace_relay_queue_messages"]; got != 2 {
		t.Errorf("queue messages = %v, want 2", got)
	}
}

// ExampleNewMetrics registers the relay's metrics beside a server's own
// and counts what the server and the deliverer report.
func ExampleNewMetrics() {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, func(context.Context) (queue.Stats, error) {
		return queue.Stats{Messages: 1, Recipients: 2}, nil // (*queue.Queue).Stats in the relay
	})
	m.Accepted(2048)
	m.RcptRefused("not-our-domain")

	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if name := mf.GetName(); name == "mxtrace_relay_messages_accepted_total" || name == "mxtrace_relay_queue_recipients" {
			fmt.Println(name, value(mf.GetMetric()[0]))
		}
	}
	// Output:
	// mxtrace_relay_messages_accepted_total 1
	// mxtrace_relay_queue_recipients 2
}
