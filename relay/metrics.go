package relay

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxtrace/mxtrace/relay/queue"
)

// statsTimeout bounds the queue read behind one scrape.
const statsTimeout = 5 * time.Second

// Metrics are the relay's Prometheus metrics (docs/relay.md#metrics),
// registered on a registry the caller gives (never the global default), so
// two relays in one process do not share counters. A nil *Metrics is
// valid and counts nothing, so the server and the deliverer call it
// unconditionally. Every label takes its values from a closed set: the
// Verdict reasons, the delivery results, the configured domains.
type Metrics struct {
	accepted      prometheus.Counter
	acceptedBytes prometheus.Counter
	rcptRefused   *prometheus.CounterVec
	connRefused   *prometheus.CounterVec
	msgRefused    *prometheus.CounterVec
	deliveries    *prometheus.CounterVec
	deferrals     prometheus.Counter
	bounces       prometheus.Counter
	primaryUp     *prometheus.GaugeVec
}

// The results of deliveries_total: what became of one recipient that left
// the queue.
const (
	resultDelivered = "delivered" // the destination accepted it
	resultFailed    = "failed"    // the destination refused it for good (5xx)
	resultExpired   = "expired"   // still undelivered at the end of its lifetime
)

// NewMetrics registers the relay's collectors on reg. stats, when not nil,
// is read at each scrape for the queue's size and age (queue.Queue.Stats),
// so the figures are the database's, whichever relay node changed it.
func NewMetrics(reg prometheus.Registerer, stats func(context.Context) (queue.Stats, error)) *Metrics {
	m := &Metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrace_relay_messages_accepted_total",
			Help: "Messages accepted and queued (answered 250 after DATA).",
		}),
		acceptedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrace_relay_accepted_bytes_total",
			Help: "Size of the messages accepted, in octets as queued.",
		}),
		rcptRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxtrace_relay_rcpt_refused_total",
			Help: "Recipients refused at RCPT TO, by reason (not-our-domain, unknown-recipient, callout-tempfail, ...).",
		}, []string{"reason"}),
		connRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxtrace_relay_connections_refused_total",
			Help: "SMTP connections refused by a limit, by reason (max-conns, max-conns-per-client).",
		}, []string{"reason"}),
		msgRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxtrace_relay_messages_refused_total",
			Help: "Messages refused at MAIL or after DATA, by reason (rate, size, memory, dmarc-reject, dmarc-temperror, from-invalid).",
		}, []string{"reason"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxtrace_relay_deliveries_total",
			Help: "Recipients that left the queue, by result: delivered, failed (refused for good), expired (lifetime over).",
		}, []string{"result"}),
		deferrals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrace_relay_deferrals_total",
			Help: "Delivery attempts of one recipient that ended in a temporary failure and a retry later.",
		}),
		bounces: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxtrace_relay_bounces_total",
			Help: "Delivery status notifications (RFC 3464) sent to envelope senders, failures and delay notices.",
		}),
		primaryUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mxtrace_relay_primary_up",
			Help: "Whether the primary tier of a destination domain answered the last out-of-band probe (1) or not (0).",
		}, []string{"domain"}),
	}
	for _, r := range []string{resultDelivered, resultFailed, resultExpired} {
		m.deliveries.WithLabelValues(r)
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.accepted, m.acceptedBytes, m.rcptRefused, m.connRefused, m.msgRefused, m.deliveries, m.deferrals,
		m.bounces, m.primaryUp)
	if stats != nil {
		reg.MustRegister(&queueCollector{stats: stats, now: time.Now})
	}
	return m
}

// Accepted counts one message of size octets queued.
func (m *Metrics) Accepted(size int) {
	if m == nil {
		return
	}
	m.accepted.Inc()
	m.acceptedBytes.Add(float64(size))
}

// RcptRefused counts one recipient refused; reason is the Verdict's.
func (m *Metrics) RcptRefused(reason string) {
	if m == nil {
		return
	}
	m.rcptRefused.WithLabelValues(reason).Inc()
}

// ConnRefused counts one connection refused by a limit.
func (m *Metrics) ConnRefused(reason string) {
	if m == nil {
		return
	}
	m.connRefused.WithLabelValues(reason).Inc()
}

// MessageRefused counts one message refused: by the rate or size limits,
// the memory bound, or the sender policy (the Verdict's reason).
func (m *Metrics) MessageRefused(reason string) {
	if m == nil {
		return
	}
	m.msgRefused.WithLabelValues(reason).Inc()
}

// Delivered counts one recipient accepted by its destination.
func (m *Metrics) Delivered() {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(resultDelivered).Inc()
}

// Failed counts one recipient its destination refused for good.
func (m *Metrics) Failed() {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(resultFailed).Inc()
}

// Expired counts one recipient given up at the end of its message's
// lifetime (RFC 5321 §4.5.4.1).
func (m *Metrics) Expired() {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(resultExpired).Inc()
}

// Deferred counts one recipient's attempt that failed for now.
func (m *Metrics) Deferred() {
	if m == nil {
		return
	}
	m.deferrals.Inc()
}

// Bounced counts one delivery status notification sent.
func (m *Metrics) Bounced() {
	if m == nil {
		return
	}
	m.bounces.Inc()
}

// PrimaryUp records the last out-of-band probe of domain's primary tier.
func (m *Metrics) PrimaryUp(domain string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.primaryUp.WithLabelValues(domain).Set(v)
}

// queueCollector reads the queue's figures at scrape time.
type queueCollector struct {
	stats func(context.Context) (queue.Stats, error)
	now   func() time.Time
}

var (
	queueReadableDesc = prometheus.NewDesc("mxtrace_relay_queue_readable",
		"Whether the queue's figures could be read at this scrape (1); 0: the other mxtrace_relay_queue_* are missing.", nil, nil)
	queueMessagesDesc = prometheus.NewDesc("mxtrace_relay_queue_messages",
		"Messages in the queue, held ones included.", nil, nil)
	queueRecipientsDesc = prometheus.NewDesc("mxtrace_relay_queue_recipients",
		"Recipients in the queue still to deliver.", nil, nil)
	queueHeldDesc = prometheus.NewDesc("mxtrace_relay_queue_held_messages",
		"Messages an operator put on hold.", nil, nil)
	queueBytesDesc = prometheus.NewDesc("mxtrace_relay_queue_bytes",
		"Size of the queued messages' data, in octets.", nil, nil)
	queueOldestDesc = prometheus.NewDesc("mxtrace_relay_queue_oldest_age_seconds",
		"Age of the oldest queued message; 0 when the queue is empty.", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueReadableDesc, queueMessagesDesc, queueRecipientsDesc,
		queueHeldDesc, queueBytesDesc, queueOldestDesc} {
		ch <- d
	}
}

// Collect answers a scrape. A queue that cannot be read is a 0 in
// mxtrace_relay_queue_readable, not a failed scrape: the relay's other
// metrics are the ones an operator needs most then.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	st, err := c.stats(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(queueReadableDesc, prometheus.GaugeValue, 0)
		return
	}
	age := 0.0
	if !st.Oldest.IsZero() {
		age = max(0, c.now().Sub(st.Oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(queueReadableDesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(queueMessagesDesc, prometheus.GaugeValue, float64(st.Messages))
	ch <- prometheus.MustNewConstMetric(queueRecipientsDesc, prometheus.GaugeValue, float64(st.Recipients))
	ch <- prometheus.MustNewConstMetric(queueHeldDesc, prometheus.GaugeValue, float64(st.Held))
	ch <- prometheus.MustNewConstMetric(queueBytesDesc, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(queueOldestDesc, prometheus.GaugeValue, age)
}

// RegisterCallout registers c's counters on reg, read at each scrape:
// the callouts made to the primary tier, and the RCPT commands waiting
// for one now.
func RegisterCallout(reg prometheus.Registerer, c *Callout) {
	reg.MustRegister(calloutCollector{c})
}

// calloutCollector reads a Callout's counters at scrape time.
type calloutCollector struct{ c *Callout }

var (
	calloutsDesc = prometheus.NewDesc("mxtrace_relay_callouts_total",
		"SMTP sessions opened with the primary tier to verify a recipient (one per address tried); cached answers open none.", nil, nil)
	calloutWaitingDesc = prometheus.NewDesc("mxtrace_relay_callouts_waiting",
		"RCPT commands waiting now for a callout's answer (their own, or one they share).", nil, nil)
)

func (cc calloutCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- calloutsDesc
	ch <- calloutWaitingDesc
}

func (cc calloutCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.c.Stats()
	ch <- prometheus.MustNewConstMetric(calloutsDesc, prometheus.CounterValue, float64(st.Callouts))
	ch <- prometheus.MustNewConstMetric(calloutWaitingDesc, prometheus.GaugeValue, float64(st.Waiting))
}
