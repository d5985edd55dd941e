package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fatih/color"

	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/send"
)

// SendPrinter prints a delivery as it happens: pass its Event method as
// send.Sender.Observer, then call WriteSend with the Result. Writes go to
// W in the order of the events; the first write error is kept in Err and
// later writes are skipped.
type SendPrinter struct {
	W     io.Writer
	Style Style
	// Transcript prints every SMTP line as it crosses the wire (-v).
	Transcript bool
	Err        error

	open bool // an attempt line is started and waits for its outcome
}

func (p *SendPrinter) printf(format string, args ...any) {
	if p.Err != nil {
		return
	}
	_, p.Err = fmt.Fprintf(p.W, format, args...)
}

// Start prints the heading: the envelope and the Message-ID.
func (p *SendPrinter) Start(from, to, messageID string) {
	bold := p.Style.paint(color.Bold)
	p.printf("%s %s  from %s  %s\n", bold("send to"), bold(to), from, p.Style.paint(color.Faint)("Message-ID <"+messageID+">"))
}

// Retry prints the retry schedule before the first round.
func (p *SendPrinter) Retry(r send.Retry) {
	var sched []string
	for _, d := range r.Schedule() {
		sched = append(sched, shortDuration(d))
	}
	if len(sched) == 0 {
		sched = []string{"none fits"}
	}
	p.printf("  retry: up to %s within %s, waiting %s (each plus up to 10%%)\n",
		prose.Count(len(r.Schedule()), "more round"), shortDuration(r.Budget()), strings.Join(sched, ", "))
}

// Event prints one event of send.Sender.
func (p *SendPrinter) Event(e send.Event) {
	dim := p.Style.paint(color.Faint)
	switch e.Kind {
	case send.EventPlan:
		p.plan(e)
	case send.EventMTASTS:
		st := e.MTASTS
		if st.Error != "" {
			p.printf("  MTA-STS: announced, not in force: %s\n", Plain(st.Error))
		} else {
			p.printf("  MTA-STS: mode %s, mx %s\n", st.Mode, strings.Join(st.MX, ", "))
		}
	case send.EventConnect:
		p.printf("  %s", hostColumn(e.Host, e.Address))
		if p.Transcript {
			p.printf("  %s\n", dim("connecting"))
			return
		}
		p.open = true
	case send.EventLine:
		if p.Transcript {
			p.printf("      %s\n", dim(e.Line))
		}
	case send.EventAttempt:
		a := e.Attempt
		if !p.open {
			p.printf("  %s", hostColumn(a.Host, a.Address))
		}
		p.open = false
		p.printf("  %s\n", p.attemptText(a))
		if a.PolicyNote != "" {
			p.printf("      %s %s\n", dim("MTA-STS testing, enforce would refuse:"), a.PolicyNote)
		}
	case send.EventWait:
		var sched []string
		for _, d := range e.Schedule {
			sched = append(sched, shortDuration(d))
		}
		plan := "none left"
		if len(sched) > 0 {
			plan = strings.Join(sched, ", ")
		}
		p.printf("  every exchange deferred; waiting %s before round %d (backoff from here: %s, each plus up to 10%%)\n",
			shortDuration(e.Wait), e.Round+1, plan)
	}
}

// plan prints the route a round follows.
func (p *SendPrinter) plan(e send.Event) {
	pl := e.Plan
	prefix := "  route: "
	if e.Round > 1 {
		prefix = fmt.Sprintf("  round %d, route: ", e.Round)
	}
	res := p.Style.paint(resultColor(pl.Result)...)(pl.Result)
	switch {
	case pl.Result == route.ResultOK:
		var tiers []string
		for _, t := range pl.Tiers {
			var hs []string
			for _, h := range t.Hosts {
				hs = append(hs, h.Name)
			}
			tiers = append(tiers, fmt.Sprintf("%d: %s", t.Preference, strings.Join(hs, " ")))
		}
		implicit := ""
		if pl.Implicit {
			implicit = " (implicit MX)"
		}
		p.printf("%s%s %s%s  %s\n", prefix, pl.Domain, res, implicit, strings.Join(tiers, "; "))
		p.printf("  order: %s\n", strings.Join(pl.Order, ", "))
	case pl.Error != "":
		p.printf("%s%s %s  %s\n", prefix, pl.Domain, res, Plain(pl.Error))
	default:
		p.printf("%s%s %s\n", prefix, pl.Domain, res)
	}
}

// hostColumn is "host [address]", the start of an attempt line.
func hostColumn(host, addr string) string {
	if addr == "" {
		return host
	}
	return host + " [" + addr + "]"
}

// attemptText is the outcome of an attempt after its host column.
func (p *SendPrinter) attemptText(a *send.Attempt) string {
	var b strings.Builder
	word := string(a.Outcome)
	switch a.Outcome {
	case send.OutcomeAccepted:
		word = p.Style.paint(color.FgGreen, color.Bold)(word)
	case send.OutcomeRejected:
		word = p.Style.paint(color.FgRed, color.Bold)(word)
	default:
		word = p.Style.paint(color.FgYellow)(word)
	}
	b.WriteString(word)
	if a.Outcome != send.OutcomeAccepted {
		fmt.Fprintf(&b, " at %s", a.Stage)
	}
	switch {
	case a.Outcome == send.OutcomeAccepted:
		fmt.Fprintf(&b, ": %s", replyText(a.Code, a.Enhanced, a.Reply))
	case a.Error != "":
		fmt.Fprintf(&b, ": %s", Plain(a.Error))
	}
	if a.TLS != nil {
		fmt.Fprintf(&b, "  (%s)", tlsText(a.TLS))
	}
	var tags []string
	if a.Rule != send.RuleOpportunistic && a.Rule != "" {
		tags = append(tags, "rule "+string(a.Rule))
	}
	if a.Plaintext {
		tags = append(tags, "clear-text retry")
	}
	if len(tags) > 0 {
		fmt.Fprintf(&b, "  %s", p.Style.paint(color.Faint)("["+strings.Join(tags, ", ")+"]"))
	}
	return b.String()
}

func replyText(code int, enhanced, text string) string {
	s := fmt.Sprint(code)
	if enhanced != "" {
		s += " " + enhanced
	}
	if text != "" {
		s += " " + text
	}
	return s
}

func tlsText(t *send.TLSState) string {
	s := t.Version
	switch {
	case t.Verified && t.Method == "dane":
		s += ", certificate matches DANE"
	case t.Verified:
		s += ", certificate verified"
	default:
		s += ", certificate not verified"
	}
	return s
}

// WriteSend writes the last line of a delivery: "accepted by HOST [ADDR]
// as QUEUEID", or "not delivered: why", with the totals.
func WriteSend(w io.Writer, r *send.Result, st Style) error {
	dim := st.paint(color.Faint)
	totals := fmt.Sprintf("%s in %s, %s", prose.Count(len(r.Attempts), "attempt"), prose.Count(r.Rounds, "round"), shortDuration(time.Duration(r.ElapsedMS)*time.Millisecond))
	var line string
	if r.Accepted {
		line = fmt.Sprintf("%s %s [%s] as %s", st.paint(color.FgGreen, color.Bold)("accepted by"), r.Host, r.Address, r.QueueID)
		if r.TLS != nil {
			totals = tlsText(r.TLS) + "; " + totals
		} else {
			totals = "no TLS; " + totals
		}
	} else {
		line = fmt.Sprintf("%s %s", st.paint(color.FgRed, color.Bold)("not delivered:"), Plain(r.Error))
	}
	_, err := fmt.Fprintf(w, "%s  %s\n", line, dim("("+totals+")"))
	return err
}

// shortDuration prints 30s, 1m, 1m30s, 2h: whole seconds, no zero units
// (milliseconds below a second).
func shortDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	s := d.Round(time.Second).String() // "30s", "1m0s", "1h0m0s", "1m30s"
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
