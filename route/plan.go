package route

import (
	"iter"

	"github.com/mxtrace/mxtrace/finding"
)

// Result is the outcome of routing a domain (docs/routing.md lists them).
type Result string

// Results. Only ResultError is temporary: a sender would queue and retry.
const (
	ResultOK       Result = "ok"       // at least one exchange to try
	ResultNullMX   Result = "null-mx"  // RFC 7505: the domain accepts no mail
	ResultNoMail   Result = "no-mail"  // no MX and no address: mail bounces
	ResultNXDomain Result = "nxdomain" // the domain does not exist
	ResultError    Result = "error"    // a lookup failed temporarily, or --self left nothing
)

// SchemaVersion is the "schema" member of the JSON output.
const SchemaVersion = 1

// Plan is the delivery plan for one domain: what an RFC 5321 §5.1 sender
// would do, plus everything noticed on the way. Its JSON form is the
// "route --json" output (README.md, "JSON").
type Plan struct {
	Schema     int      `json:"schema"`
	Domain     string   `json:"domain"`
	Result     Result   `json:"result"`
	Error      string   `json:"error,omitempty"` // why Result is "error"
	Implicit   bool     `json:"implicit"`
	AliasChain []string `json:"alias_chain"`
	// Records are the MX records as served, in the server's order, at
	// most MaxRecords of them.
	Records []Record `json:"records"`
	// RecordsOmitted counts the records served past MaxRecords, left out
	// of Records; only a zone file can hold them.
	RecordsOmitted int `json:"records_omitted,omitempty"`
	// Tiers are the exchanges grouped by preference, lowest first, after
	// dropping what --self and the bounds remove.
	Tiers []Tier `json:"tiers"`
	// Order is one attempt order: tiers in order, hosts shuffled inside each.
	Order    []string          `json:"order"`
	Findings []finding.Finding `json:"findings"`
	// ElapsedMS is the wall time the plan took, in milliseconds.
	ElapsedMS int64 `json:"elapsed_ms"`
}

// Record is one MX record as served.
type Record struct {
	Preference uint16 `json:"preference"`
	Exchange   string `json:"exchange"`
	TTL        uint32 `json:"ttl"`
}

// Tier is the set of exchanges sharing one preference. A sender tries every
// host of a tier, in random order, before the next tier (RFC 5321 §5.1).
type Tier struct {
	Preference uint16 `json:"preference"`
	Hosts      []Host `json:"hosts"`
}

// Host is one exchange with its addresses in the order the resolver returned
// them (a multihomed host's order is the DNS server's load balancing).
type Host struct {
	Name string `json:"name"`
	// CanonicalName is set when Name is an alias (mx-target-cname).
	CanonicalName string   `json:"canonical_name,omitempty"`
	Addresses     []string `json:"addresses"`
	// Problems are the IDs of the findings about this host.
	Problems []finding.ID `json:"problems"`
}

// add appends f to the plan's findings.
func (p *Plan) add(f finding.Finding) { p.Findings = append(p.Findings, f) }

// Hosts returns every host of every tier, tiers in order. The slice is
// made at its length (collecting into a growing one allocated 2.5 times
// the bytes, in every audit).
func (p *Plan) Hosts() []Host {
	n := p.HostCount()
	if n == 0 {
		return nil
	}
	hosts := make([]Host, 0, n)
	for _, t := range p.Tiers {
		hosts = append(hosts, t.Hosts...)
	}
	return hosts
}

// HostCount is len(p.Hosts()), without the copy.
func (p *Plan) HostCount() int {
	n := 0
	for _, t := range p.Tiers {
		n += len(t.Hosts)
	}
	return n
}

// EachHost yields every host of every tier, tiers in order, without the
// copy Hosts makes: a scan's summary looks at the hosts of every plan.
func (p *Plan) EachHost() iter.Seq[Host] {
	return func(yield func(Host) bool) {
		for _, t := range p.Tiers {
			for _, h := range t.Hosts {
				if !yield(h) {
					return
				}
			}
		}
	}
}
