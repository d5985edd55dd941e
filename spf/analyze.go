package spf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
)

// DefaultMaxRecords bounds how many records one analysis fetches. An
// evaluation can reach at most 11 records (10 includes or redirects); the
// audit walks further to report how far over the limit a tree goes, but
// not without end.
const DefaultMaxRecords = 64

// maxVoidChecks bounds the address lookups made to count void lookups.
const maxVoidChecks = 128

// Options configure Lookup; the zero value is ready to use.
type Options struct {
	// MaxRecords bounds the records fetched; 0 means DefaultMaxRecords.
	MaxRecords int
	Logger     *slog.Logger // nil: silent; otherwise each lookup is logged once, at debug
}

// Node is one record in the tree.
type Node struct {
	Domain string `json:"domain"`
	// Via is how the parent reached this record: "include" or
	// "redirect"; "" at the root. Term is the parent's term as written.
	Via  string `json:"via,omitempty"`
	Term string `json:"term,omitempty"`
	// Record is the SPF record text; "" when none was found.
	Record string `json:"record,omitempty"`
	// Terms are the record's terms as written.
	Terms []string `json:"terms,omitempty"`
	// Lookups counts this record's own DNS-querying terms (include, a,
	// mx, ptr, exists, redirect); TotalLookups adds every descendant's
	// (RFC 7208 §4.6.4: nested includes count).
	Lookups      int `json:"lookups"`
	TotalLookups int `json:"total_lookups"`
	// VoidLookups counts this record's terms whose target has no records
	// (NXDOMAIN or no data), an included or redirected-to domain without
	// an SPF record included; TotalVoidLookups adds the descendants'.
	VoidLookups      int `json:"void_lookups"`
	TotalVoidLookups int `json:"total_void_lookups"`
	// Children are the included and redirected-to records, in term order.
	Children []*Node `json:"children,omitempty"`
	// Errors are problems with this record, in words.
	Errors []string `json:"errors,omitempty"`

	// Parsed is the parsed record; nil when there is none or it does not
	// parse.
	Parsed *Record `json:"-"`

	inRedirectChain bool // the root, or reached from it by redirects only
	kind            nodeProblem
	problemErr      error
	records         int // SPF records at the name, when more than one
}

type nodeProblem int

const (
	nodeOK nodeProblem = iota
	nodeNoRecord
	nodeMultiple
	nodeSyntax
	nodeDNS
	nodeLoop
	nodeSkipped
)

// Analysis is the audit of one domain's SPF setup, what Lookup returns.
// (It is not called Result: in RFC 7208 §2.6 a result is what check_host
// returns, the Result of CheckHost.)
type Analysis struct {
	Domain string `json:"domain"`
	Tree   *Node  `json:"tree"`
	// Lookups and VoidLookups are the tree's totals.
	Lookups     int  `json:"lookups"`
	VoidLookups int  `json:"void_lookups"`
	Loop        bool `json:"loop,omitempty"` // an include/redirect loop: evaluation never ends below the limit
	// Incomplete is set when part of the tree could not be looked at (a
	// DNS failure, a target built from macros, the size bound).
	Incomplete bool  `json:"incomplete,omitempty"`
	ElapsedMS  int64 `json:"elapsed_ms"`
}

// MarshalJSON writes the analysis with its findings (Findings), before
// elapsed_ms.
func (an *Analysis) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Domain      string            `json:"domain"`
		Tree        *Node             `json:"tree"`
		Lookups     int               `json:"lookups"`
		VoidLookups int               `json:"void_lookups"`
		Loop        bool              `json:"loop,omitempty"`
		Incomplete  bool              `json:"incomplete,omitempty"`
		Findings    []finding.Finding `json:"findings"`
		ElapsedMS   int64             `json:"elapsed_ms"`
	}{an.Domain, an.Tree, an.Lookups, an.VoidLookups, an.Loop, an.Incomplete, Findings(an), an.ElapsedMS})
}

// RecordQuestion is the question Lookup asks first: the TXT records of
// domain, where its SPF record is published (RFC 7208 §3, §4.4).
func RecordQuestion(domain dnsname.Name) resolve.Question {
	return resolve.Q(domain.FQDN(), dns.TypeTXT)
}

// Lookup fetches the SPF record of domain and walks everything it includes
// or redirects to, for the audit: the record tree, the DNS-querying terms
// and void lookups an evaluation would need (RFC 7208 §4.6.4). Unlike
// CheckHost it does not depend on a client address: it looks at every
// branch. It returns an error (with the partial Analysis) only when the
// domain's own TXT lookup fails temporarily: that is never "spf-missing".
func Lookup(ctx context.Context, r resolve.Resolver, domain dnsname.Name, opts Options) (an *Analysis, err error) {
	start := time.Now()
	w := &walker{r: r, ctx: ctx, root: domain.String(), maxRecords: positiveOr(opts.MaxRecords, DefaultMaxRecords)}
	an = &Analysis{Domain: domain.String()}
	defer func() {
		an.ElapsedMS = time.Since(start).Milliseconds()
		if opts.Logger != nil && opts.Logger.Enabled(ctx, slog.LevelDebug) {
			opts.Logger.Debug("spf lookup", "domain", domain, "lookups", an.Lookups, "void_lookups", an.VoidLookups,
				"error", err, "duration", time.Since(start))
		}
	}()
	an.Tree = w.node(domain.String(), "", "", nil, true)
	an.Lookups, an.VoidLookups = an.Tree.TotalLookups, an.Tree.TotalVoidLookups
	an.Loop, an.Incomplete = w.loop, w.incomplete
	if an.Tree.kind == nodeDNS {
		return an, an.Tree.problemErr
	}
	return an, nil
}

// walker is the state of one analysis.
type walker struct {
	r          resolve.Resolver
	ctx        context.Context
	root       string
	maxRecords int

	mu         sync.Mutex
	records    int
	voidChecks int
	loop       bool
	incomplete bool
}

func (w *walker) take(counter *int, limit int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if *counter >= limit {
		w.incomplete = true
		return false
	}
	*counter++
	return true
}

func (w *walker) flag(loop, incomplete bool) {
	w.mu.Lock()
	w.loop = w.loop || loop
	w.incomplete = w.incomplete || incomplete
	w.mu.Unlock()
}

// node fetches and walks the record of domain. ancestors are the domains
// above it, for loop detection.
func (w *walker) node(domain, via, term string, ancestors []string, redirectChain bool) *Node {
	n := &Node{Domain: strings.ToLower(strings.TrimSuffix(domain, ".")), Via: via, Term: term, inRedirectChain: redirectChain}
	problem := func(kind nodeProblem, err error) *Node {
		n.kind, n.problemErr = kind, err
		n.Errors = append(n.Errors, err.Error())
		return n
	}
	if slices.Contains(ancestors, n.Domain) {
		// RFC 7208 §4.6.4: the lookup limit is what ends a loop; the
		// evaluation runs into it and gives permerror.
		w.flag(true, false)
		return problem(nodeLoop, fmt.Errorf("loop: %s is already being evaluated above (%s)", n.Domain, strings.Join(append(ancestors, n.Domain), " → ")))
	}
	if len(ancestors) > maxDepth {
		w.flag(false, true)
		return problem(nodeSkipped, fmt.Errorf("%w (more than %d levels)", ErrDepth, maxDepth))
	}
	qname, ok := queryName(n.Domain)
	if !ok || !multiLabel(qname) {
		// RFC 7208 §4.3: check_host() gives none for such a name.
		return problem(nodeNoRecord, fmt.Errorf("%w: %q", ErrInvalidDomain, domain))
	}
	if !w.take(&w.records, w.maxRecords) {
		return problem(nodeSkipped, fmt.Errorf("%w: not fetched, the tree has more than %d records", ErrAnalysisTooLarge, w.maxRecords))
	}
	f, err := fetchRecord(w.ctx, w.r, qname)
	switch {
	case errors.Is(err, ErrDNS):
		w.flag(false, true)
		return problem(nodeDNS, err)
	case errors.Is(err, ErrNoRecord):
		if f.void && via != "" {
			// The evaluation's lookup of an included or redirected-to
			// record that does not exist is a void lookup.
			n.TotalVoidLookups = 1
		}
		return problem(nodeNoRecord, err)
	case err != nil:
		n.records = len(f.others)
		return problem(nodeMultiple, err)
	}
	n.Record = f.text
	rec, err := Parse(f.text)
	if err != nil {
		return problem(nodeSyntax, err)
	}
	n.Parsed = rec
	if len(rec.Terms) > 0 {
		n.Terms = make([]string, len(rec.Terms))
		for i, t := range rec.Terms {
			n.Terms[i] = t.Raw
		}
	}
	n.Lookups = rec.Lookups()

	// Children and void checks are independent lookups: run them at once,
	// each goroutine writing its own slot (one array for the three
	// results: a scan walks a tree for every domain).
	var (
		wg    sync.WaitGroup
		slots = make([]termSlot, len(rec.Terms))
		below = append(slices.Clip(ancestors), n.Domain)
	)
	hasAll := rec.HasAll()
	for i, t := range rec.Terms {
		switch {
		case !t.Modifier && t.Name == MechInclude, t.Modifier && t.Name == ModRedirect && !hasAll:
			via := MechInclude
			if t.Modifier {
				via = ModRedirect
			}
			target, ok := w.staticTarget(t.Domain, n.Domain)
			if !ok {
				w.flag(false, true)
				slots[i].why = t.Raw + " depends on the message being checked (macros); not followed"
				continue
			}
			chain := redirectChain && via == ModRedirect
			wg.Go(func() { slots[i].child = w.node(target, via, t.Raw, below, chain) })
		case !t.Modifier && (t.Name == MechA || t.Name == MechMX || t.Name == MechExists):
			target := n.Domain
			if t.Domain != "" {
				var ok bool
				if target, ok = w.staticTarget(t.Domain, n.Domain); !ok {
					continue // depends on the message: cannot be checked here
				}
			}
			if !w.take(&w.voidChecks, maxVoidChecks) {
				continue
			}
			wg.Go(func() { slots[i].void, slots[i].why = w.isVoid(t.Name, target) })
		}
	}
	wg.Wait()
	for _, sl := range slots {
		if sl.void {
			n.VoidLookups++
		}
		if sl.why != "" {
			n.Errors = append(n.Errors, sl.why)
		}
	}
	n.TotalLookups, n.TotalVoidLookups = n.Lookups, n.VoidLookups
	for _, sl := range slots {
		c := sl.child
		if c == nil {
			continue
		}
		n.Children = append(n.Children, c)
		n.TotalLookups += c.TotalLookups
		n.TotalVoidLookups += c.TotalVoidLookups
	}
	return n
}

// termSlot is what walking one term of a record found: the child node of
// an include or redirect, or whether an a, mx or exists term's lookup is
// void, and why a term was not followed.
type termSlot struct {
	child *Node
	void  bool
	why   string
}

// staticTarget expands a domain-spec that does not depend on the message:
// only %{d} (the current domain) and %{o} (taken as the audited domain)
// are known without a sender and a client address.
func (w *walker) staticTarget(spec MacroString, current string) (string, bool) {
	toks, serr := tokenizeMacro(string(spec), domainLetters, false)
	if serr != nil {
		return "", false
	}
	for _, t := range toks {
		if t.letter != 0 && t.letter != 'd' && t.letter != 'o' {
			return "", false
		}
	}
	env := &macroEnv{domain: current, domainOf: w.root}
	s, err := spec.expand(env, domainLetters, false)
	return s, err == nil
}

// isVoid reports whether the lookup a term makes finds nothing: for a, no
// A and no AAAA records; for mx, no MX records; for exists, no A record.
// why reports what else is wrong (too many MX records).
func (w *walker) isVoid(mech, target string) (void bool, why string) {
	qname, ok := queryName(target)
	if !ok {
		return false, ""
	}
	ask := func(qtype uint16) (*resolve.Result, bool) {
		r, err := resolve.Follow(w.ctx, w.r, resolve.Q(qname, qtype))
		if err != nil {
			w.flag(false, true)
			return nil, false
		}
		return r, true
	}
	switch mech {
	case MechMX:
		r, ok := ask(dns.TypeMX)
		if !ok {
			return false, ""
		}
		if len(r.Records) > MaxMXNames {
			return false, fmt.Sprintf("mx: %s has %d MX records; more than %d is permerror (RFC 7208 §4.6.4)", strings.TrimSuffix(qname, "."), len(r.Records), MaxMXNames)
		}
		return len(r.Records) == 0, ""
	case MechExists:
		r, ok := ask(dns.TypeA)
		return ok && len(r.Records) == 0, ""
	}
	var v4, v6 *resolve.Result
	var ok4, ok6 bool
	var wg sync.WaitGroup
	wg.Go(func() { v4, ok4 = ask(dns.TypeA) })
	wg.Go(func() { v6, ok6 = ask(dns.TypeAAAA) })
	wg.Wait()
	return ok4 && ok6 && len(v4.Records) == 0 && len(v6.Records) == 0, ""
}

// Findings judges an Analysis: spf-missing, spf-include-none,
// spf-redirect-none, spf-multiple, spf-syntax, spf-ptr, spf-plus-all and
// spf-neutral-all per record of the tree, spf-lookup-limit and
// spf-void-lookups for the totals; deduplicated and sorted. An Analysis
// whose Lookup failed gives none: the error is what to report.
func Findings(an *Analysis) []finding.Finding {
	fs := []finding.Finding{}
	if an == nil || an.Tree == nil || an.Tree.kind == nodeDNS {
		return fs
	}
	// The key is the three fields, not one string joining them: no
	// string is built per finding.
	type key struct{ id, subject, message string }
	seen := map[key]bool{}
	add := func(f finding.Finding) {
		k := key{string(f.ID), f.Subject, f.Message}
		if !seen[k] {
			seen[k] = true
			fs = append(fs, f)
		}
	}
	root := an.Tree
	var visit func(n, parent *Node)
	visit = func(n, parent *Node) {
		from := ""
		if parent != nil {
			from = " (reached by " + n.Term + " from " + parent.Domain + ")"
		}
		switch n.kind {
		case nodeNoRecord:
			// The finding is about the record holding the term: the
			// target's owner may not know it is included at all.
			switch {
			case parent == nil:
				add(finding.Newf(finding.SPFMissing, n.Domain, "%s publishes no SPF record (%s).", n.Domain, noRecordReason(n.problemErr)))
			case n.Via == ModRedirect:
				// RFC 7208 §6.1: a redirect target without a record is
				// permerror, not none.
				add(finding.Newf(finding.SPFRedirectNone, parent.Domain, "The SPF record of %s has %s, but %s publishes no SPF record (%s): evaluation ends in permerror, not none, whenever no mechanism matches before it.",
					parent.Domain, n.Term, n.Domain, noRecordReason(n.problemErr)))
			default:
				// RFC 7208 §5.2: an include whose target check_host
				// finds none for is permerror.
				add(finding.Newf(finding.SPFIncludeNone, parent.Domain, "The SPF record of %s has %s, but %s publishes no SPF record (%s): the include, and so the evaluation, ends in permerror whenever it is reached.",
					parent.Domain, n.Term, n.Domain, noRecordReason(n.problemErr)))
			}
		case nodeMultiple:
			// RFC 7208 §4.5: more than one record is permerror.
			add(finding.Newf(finding.SPFMultiple, n.Domain, "%s publishes %d SPF records%s; receivers then return permerror, as if it had a broken one.", n.Domain, n.records, from))
		case nodeSyntax:
			add(finding.Newf(finding.SPFSyntax, n.Domain, "The SPF record of %s%s does not parse: %v (record %q).", n.Domain, from, n.problemErr, n.Record))
		}
		if n.Parsed != nil {
			for _, t := range n.Parsed.Terms {
				if t.Modifier {
					continue
				}
				switch {
				case t.Name == MechPTR:
					add(finding.Newf(finding.SPFPTR, n.Domain, "The SPF record of %s%s uses %q; RFC 7208 §5.5 says ptr SHOULD NOT be used.", n.Domain, from, t.Raw))
				case t.Name == MechAll && t.Qualifier.Effective() == QualifierPass:
					if parent == nil || n.inRedirectChain {
						add(finding.Newf(finding.SPFPlusAll, n.Domain, "The SPF record of %s%s ends in %q: every address passes.", n.Domain, from, t.Raw))
					} else {
						add(finding.Newf(finding.SPFPlusAll, n.Domain, "The SPF record of %s%s has %q, so the include passes for every address.", n.Domain, from, t.Raw))
					}
				case t.Name == MechAll && t.Qualifier.Effective() == QualifierNeutral && n.inRedirectChain:
					add(finding.Newf(finding.SPFNeutralAll, n.Domain, "The SPF record of %s%s ends in %q: unlisted senders get neutral.", n.Domain, from, t.Raw))
				}
			}
		}
		for _, c := range n.Children {
			visit(c, n)
		}
	}
	visit(root, nil)
	if an.Loop {
		add(finding.Newf(finding.SPFLookupLimit, root.Domain, "The SPF record of %s includes or redirects to itself (a loop), so evaluation always exceeds %d DNS-querying terms.", root.Domain, MaxLookups))
	} else if an.Lookups > MaxLookups {
		add(finding.Newf(finding.SPFLookupLimit, root.Domain, "Evaluating the SPF record of %s can need %d DNS-querying terms (nested includes counted); more than %d is permerror.", root.Domain, an.Lookups, MaxLookups))
	}
	if an.VoidLookups > MaxVoidLookups {
		add(finding.Newf(finding.SPFVoidLookups, root.Domain, "The SPF record of %s has %d terms whose targets do not exist or have no records; more than %d is permerror.", root.Domain, an.VoidLookups, MaxVoidLookups))
	}
	finding.Sort(fs)
	return fs
}
