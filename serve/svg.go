package serve

import (
	"cmp"
	"fmt"
	"html"
	"html/template"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dane"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/ipclass"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/route"
)

// The route as a picture: an inline SVG drawn on the server from the
// delivery plan (RFC 5321 §5.1) and the check's details, so the page needs
// no script to show it and a test can compare it byte for byte. The
// geometry is fixed (a viewBox the page scales, in two layouts); every
// colour comes from classes the style sheet sets for light and dark, so the
// picture carries no style of its own (the page's CSP has no inline style).

// Geometry of the picture, in viewBox units.
const (
	svgPad    = 12 // inside a tier's frame
	svgGap    = 16 // between two exchange boxes
	svgBoxW   = 340
	svgLine   = 18 // one line of text in a box
	svgBadgeH = 20
	svgCharW  = 7.9 // a monospace character at 13px
	svgSansW  = 7.0 // an average sans-serif character at 13px, generously
	// svgMaxText is the characters that fit one line of a box.
	svgMaxText = int((svgBoxW - 2*svgPad) / svgCharW)
	// svgMaxHosts, svgMaxBoxes, svgMaxTiers and svgMaxAddrs bound what
	// one tier and the whole picture draw, and what one box lists, so
	// that a domain with 64 exchanges of 16 addresses each still makes a
	// small page; the table under the picture lists every exchange.
	svgMaxHosts = 12
	svgMaxBoxes = 12
	svgMaxTiers = 6
	svgMaxAddrs = 4
)

// layout is the picture's shape: two columns of exchanges for a wide
// screen, one for a phone, where a wide picture scaled down would make the
// text too small to read.
type layout struct{ cols int }

var (
	wide   = layout{cols: 2}
	narrow = layout{cols: 1}
)

// width is the picture's width in viewBox units.
func (l layout) width() int { return l.cols*svgBoxW + (l.cols-1)*svgGap + 2*svgPad }

// chars is how many sans-serif characters fit a line starting at x.
func (l layout) chars(x int) int { return int(float64(l.width()-x-svgPad) / svgSansW) }

// badge is one mark on an exchange: a protection it has ("ok"), lacks
// ("bad") or does not use ("off"), with a tooltip saying why.
type badge struct {
	Label, State, Title string
}

// svgHost is an exchange as the picture draws it.
type svgHost struct {
	route.Host
	Notes  []string // what is wrong with it, one short line each
	Usable bool     // a sender can deliver to it
	Badges []badge
}

// routeSVG draws the route of r in layout l: the tiers in attempt order,
// each exchange with its addresses and badges, what happens when a tier is
// down, and the dead ends (Null MX, NXDOMAIN, no mail, a failed lookup) as
// what they are.
func routeSVG(r *check.Report, l layout) template.HTML {
	p := r.Plan
	b := &svgBuilder{layout: l}
	label := routeLabel(r)
	y := b.pill(0, "Sending server")
	if len(p.AliasChain) > 0 {
		y = b.arrow(y, p.Domain+" is an alias (CNAME) of "+p.AliasChain[len(p.AliasChain)-1]+": its MX records are used.", "")
	} else {
		y = b.arrow(y, "Looks up the MX records of "+p.Domain+".", "")
	}
	switch {
	case p.Result == route.ResultNullMX:
		y = b.end(y, "info", "Null MX: "+p.Domain+" accepts no mail",
			"It publishes MX 0 . (RFC 7505): senders return mail at once, without trying.")
	case p.Result == route.ResultNXDomain:
		y = b.end(y, "bad", p.Domain+" does not exist (NXDOMAIN)",
			"There is nowhere to deliver: senders bounce mail to it at once.")
	case p.Result == route.ResultNoMail:
		y = b.end(y, "bad", "No MX and no address for "+p.Domain,
			"There is nowhere to deliver: mail to it bounces.")
	case p.Result == route.ResultError || len(p.Tiers) == 0:
		y = b.end(y, "warn", "The route could not be computed", clipText(cmp.Or(p.Error, "a lookup failed"), 200),
			"Senders queue the mail and retry: this is temporary, not a missing MX.")
	default:
		y = b.tiers(y, p, hostsOf(r))
	}
	var out strings.Builder
	fmt.Fprintf(&out, `<svg class="route route-%s" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s">`+"\n",
		map[int]string{1: "narrow", 2: "wide"}[l.cols], l.width(), y, esc(label))
	fmt.Fprintf(&out, "<title>Delivery route for %s</title>\n<desc>%s</desc>\n", esc(p.Domain), esc(label))
	for _, s := range b.parts {
		out.WriteString(s)
		out.WriteByte('\n')
	}
	out.WriteString("</svg>")
	return template.HTML(out.String())
}

// tiers draws every tier and the connectors between them.
func (b *svgBuilder) tiers(y int, p *route.Plan, hosts map[string]*svgHost) int {
	anyUsable := false
	budget := svgMaxBoxes
	for i, t := range p.Tiers {
		var hs []*svgHost
		for _, h := range t.Hosts {
			hs = append(hs, hosts[h.Name])
		}
		usable := slices.ContainsFunc(hs, func(h *svgHost) bool { return h.Usable })
		anyUsable = anyUsable || usable
		if budget == 0 || i == svgMaxTiers {
			// The rest in one line: the picture shows the shape, the
			// table under it every exchange.
			var n int
			for _, rest := range p.Tiers[i:] {
				n += len(rest.Hosts)
			}
			y = b.note(y, fmt.Sprintf("… and %s with %s behind, listed in the table below.",
				prose.Count(len(p.Tiers)-i, "more tier"), prose.Count(n, "exchange")))
			y = b.arrow(y, "If all are down, senders queue the mail, retry for days (RFC 5321 §4.5.4.1), then bounce it.", "")
			break
		}
		y = b.tier(y, i, p, hs, min(budget, svgMaxHosts))
		budget -= min(len(hs), budget, svgMaxHosts)
		if i < len(p.Tiers)-1 {
			next := p.Tiers[i+1].Preference
			if usable {
				y = b.arrow(y, fmt.Sprintf("If every exchange at preference %d is down, senders try preference %d.", t.Preference, next), "")
			} else {
				y = b.arrow(y, fmt.Sprintf("Nothing at preference %d can take mail: senders go straight to preference %d.", t.Preference, next), "bad")
			}
			continue
		}
		if anyUsable {
			// RFC 5321 §4.5.4.1: retry until the give-up time, at
			// least 4-5 days, then bounce.
			y = b.arrow(y, "If all are down, senders queue the mail, retry for days (RFC 5321 §4.5.4.1), then bounce it.", "")
		} else {
			y = b.arrow(y, "No exchange can take mail: senders retry for days, then bounce it.", "bad")
		}
	}
	return y
}

// note draws a line of text between blocks, wrapped.
func (b *svgBuilder) note(y int, s string) int {
	for _, line := range wrap(s, b.layout.chars(svgPad)) {
		b.text(svgPad, y+18, "rt-sub", line)
		y += 18
	}
	return y + 6
}

// tier draws one tier: its heading, then at most limit of its exchanges in
// the layout's columns.
func (b *svgBuilder) tier(y, i int, p *route.Plan, hs []*svgHost, limit int) int {
	t := p.Tiers[i]
	title := fmt.Sprintf("%s · preference %d", ordinal(i+1)+" choice", t.Preference)
	sub := "Every sender tries this exchange first."
	switch {
	case p.Implicit:
		title = "No MX records: implicit MX"
		sub = "Senders fall back to the domain's own address (RFC 5321 §5.1)."
	case len(hs) > 1:
		sub = fmt.Sprintf("%d exchanges at equal preference: each sender tries them in random order, spreading the load.", len(hs))
	case i > 0:
		sub = "Backup: gets mail only while the tiers above are unreachable."
	}
	subClass := "rt-sub"
	if !slices.ContainsFunc(hs, func(h *svgHost) bool { return h.Usable }) {
		sub, subClass = "No exchange here can receive mail.", "rt-sub rt-bad-text"
	}
	cols := b.layout.cols
	shown := hs[:min(len(hs), limit)]
	rows := (len(shown) + cols - 1) / cols
	heights := make([]int, rows)
	for k, h := range shown {
		heights[k/cols] = max(heights[k/cols], boxHeight(h))
	}
	top := y
	var head []string
	y += svgPad + 14
	for _, line := range wrap(title, b.layout.chars(svgPad)) {
		head = append(head, fmt.Sprintf(`<text class="rt-tier-title" x="%d" y="%d">%s</text>`, svgPad, y, esc(line)))
		y += 18
	}
	for _, line := range wrap(sub, b.layout.chars(svgPad)) {
		head = append(head, fmt.Sprintf(`<text class="%s" x="%d" y="%d">%s</text>`, subClass, svgPad, y+1, esc(line)))
		y += 17
	}
	y -= 6
	var body []string
	for r := range rows {
		for c := range cols {
			k := r*cols + c
			if k >= len(shown) {
				break
			}
			body = append(body, b.box(svgPad+c*(svgBoxW+svgGap), y, heights[r], shown[k], p.Implicit)...)
		}
		y += heights[r] + svgGap/2
	}
	if more := len(hs) - len(shown); more > 0 {
		for _, line := range wrap(fmt.Sprintf("… and %s at this preference (listed in the table below).", prose.Count(more, "more exchange")), b.layout.chars(svgPad)) {
			body = append(body, fmt.Sprintf(`<text class="rt-sub" x="%d" y="%d">%s</text>`, svgPad, y+14, esc(line)))
			y += 18
		}
		y += 4
	}
	y += svgPad - svgGap/2
	class := "rt-tier"
	if i == 0 {
		class += " rt-primary"
	}
	b.add(fmt.Sprintf(`<g class="rt-tier-g"><rect class="%s" x="0" y="%d" width="%d" height="%d" rx="10"/>`, class, top, b.layout.width(), y-top))
	b.parts = append(b.parts, head...)
	b.parts = append(b.parts, body...)
	b.add("</g>")
	return y
}

// boxHeight is the height of an exchange's box.
func boxHeight(h *svgHost) int {
	lines := 1 + len(h.Notes) + min(len(h.Addresses), svgMaxAddrs)
	if len(h.Addresses) > svgMaxAddrs {
		lines++
	}
	if len(h.Addresses) == 0 && len(h.Notes) == 0 {
		lines++ // "no address"
	}
	ht := 12 + lines*svgLine + 8
	if len(h.Badges) > 0 {
		ht += svgBadgeH + 8
	}
	return ht
}

// box draws one exchange at x, y.
func (b *svgBuilder) box(x, y, height int, h *svgHost, implicit bool) []string {
	class := "rt-box"
	switch {
	case !h.Usable:
		class += " rt-box-bad"
	case implicit:
		class += " rt-box-implicit"
	}
	out := []string{fmt.Sprintf(`<rect class="%s" x="%d" y="%d" width="%d" height="%d" rx="6"/>`, class, x, y, svgBoxW, height)}
	tx := x + svgPad
	ty := y + 12 + 13
	out = append(out, textLine(tx, ty, "rt-name", h.Name, svgMaxText))
	for _, n := range h.Notes {
		ty += svgLine
		class := "rt-note"
		if strings.HasPrefix(n, "→") {
			class = "rt-note-warn"
		}
		out = append(out, textLine(tx, ty, class, n, svgMaxText))
	}
	for _, a := range h.Addresses[:min(len(h.Addresses), svgMaxAddrs)] {
		ty += svgLine
		out = append(out, textLine(tx, ty, "rt-addr", a, svgMaxText))
	}
	if more := len(h.Addresses) - svgMaxAddrs; more > 0 {
		ty += svgLine
		out = append(out, textLine(tx, ty, "rt-sub", "+ "+prose.Count(more, "more address"), svgMaxText))
	}
	if len(h.Addresses) == 0 && len(h.Notes) == 0 {
		ty += svgLine
		out = append(out, textLine(tx, ty, "rt-note", "✗ no address", svgMaxText))
	}
	bx := tx
	by := y + height - 8 - svgBadgeH
	for _, bd := range h.Badges {
		text := map[string]string{"ok": "✓ ", "bad": "✗ ", "off": "– "}[bd.State] + bd.Label
		w := int(float64(utf8.RuneCountInString(text))*7.4) + 14
		out = append(out, fmt.Sprintf(`<g class="rt-badge rt-badge-%s"><title>%s</title><rect x="%d" y="%d" width="%d" height="%d" rx="10"/><text x="%d" y="%d">%s</text></g>`,
			bd.State, esc(bd.Title), bx, by, w, svgBadgeH, bx+7, by+14, esc(text)))
		bx += w + 6
	}
	return out
}

// textLine is one line of text of at most n characters, cut to fit with
// the whole text as its tooltip.
func textLine(x, y int, class, s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return fmt.Sprintf(`<text class="%s" x="%d" y="%d">%s</text>`, class, x, y, esc(s))
	}
	return fmt.Sprintf(`<text class="%s" x="%d" y="%d"><title>%s</title>%s</text>`, class, x, y, esc(s), esc(clipText(s, n)))
}

// wrap breaks s into lines of at most n characters at spaces (a word
// longer than a line is cut).
func wrap(s string, n int) []string {
	var lines []string
	line := ""
	for w := range strings.FieldsSeq(s) {
		switch {
		case line == "":
			line = w
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(w) <= n:
			line += " " + w
		default:
			lines = append(lines, clipText(line, n))
			line = w
		}
	}
	return append(lines, clipText(line, n))
}

// svgBuilder collects the picture's elements.
type svgBuilder struct {
	layout layout
	parts  []string
}

func (b *svgBuilder) add(s string) { b.parts = append(b.parts, s) }

func (b *svgBuilder) text(x, y int, class, s string) {
	b.add(fmt.Sprintf(`<text class="%s" x="%d" y="%d">%s</text>`, class, x, y, esc(s)))
}

// pill draws the sender at the top.
func (b *svgBuilder) pill(y int, s string) int {
	s = clipText(s, int(float64(b.layout.width()-28)/7.9))
	w := int(float64(utf8.RuneCountInString(s))*7.9) + 28
	b.add(fmt.Sprintf(`<rect class="rt-sender" x="0" y="%d" width="%d" height="32" rx="16"/>`, y, w))
	b.text(14, y+21, "rt-sender-text", s)
	return y + 32
}

// arrow draws a connector down from y with its caption beside it, on as
// many lines as it needs.
func (b *svgBuilder) arrow(y int, caption, state string) int {
	class := "rt-arrow"
	if state != "" {
		class += " rt-arrow-" + state
	}
	textClass := "rt-caption"
	if state == "bad" {
		textClass += " rt-bad-text"
	}
	const x = 28
	lines := wrap(caption, b.layout.chars(x+22))
	h := max(52, 20+17*len(lines))
	b.add(fmt.Sprintf(`<path class="%s" d="M%d %d V%d M%d %d l6 10 l6 -10"/>`, class, x, y+4, y+h-4, x-6, y+h-14))
	ty := y + h/2 + 5 - 17*(len(lines)-1)/2
	for _, line := range lines {
		b.text(x+22, ty, textClass, line)
		ty += 17
	}
	return y + h
}

// end draws the block a route ends in when there is no exchange: a title,
// and what senders do.
func (b *svgBuilder) end(y int, state, title string, detail ...string) int {
	mark := map[string]string{"info": "⊘ ", "bad": "✗ ", "warn": "! "}[state]
	var parts []string
	ty := y + 26
	for _, line := range wrap(mark+title, b.layout.chars(svgPad+4)) {
		parts = append(parts, fmt.Sprintf(`<text class="rt-tier-title" x="%d" y="%d">%s</text>`, svgPad+4, ty, esc(line)))
		ty += 19
	}
	ty += 2
	for _, d := range detail {
		for _, line := range wrap(d, b.layout.chars(svgPad+4)) {
			parts = append(parts, fmt.Sprintf(`<text class="rt-sub" x="%d" y="%d">%s</text>`, svgPad+4, ty, esc(line)))
			ty += 18
		}
	}
	h := ty - y + 2
	b.add(fmt.Sprintf(`<rect class="rt-end rt-end-%s" x="0" y="%d" width="%d" height="%d" rx="10"/>`, state, y, b.layout.width(), h))
	b.parts = append(b.parts, parts...)
	return y + h
}

// hostsOf builds the picture's view of every exchange of r's plan: what
// is wrong with it, and its badges from the check's details.
func hostsOf(r *check.Report) map[string]*svgHost {
	out := map[string]*svgHost{}
	for _, h := range r.Plan.Hosts() {
		v := &svgHost{Host: h, Usable: len(h.Addresses) > 0}
		if h.CanonicalName != "" {
			v.Notes = append(v.Notes, "→ alias (CNAME) of "+h.CanonicalName)
		}
		for _, id := range h.Problems {
			switch id {
			case finding.MXTargetCNAME:
				// said by the alias line
			case finding.MXTargetNXDomain:
				v.Notes = append(v.Notes, "✗ the name does not exist")
			case finding.MXTargetNoAddress:
				v.Notes = append(v.Notes, "✗ no A or AAAA record")
			case finding.MXTargetIP:
				v.Notes = append(v.Notes, "✗ an IP address, not a host name")
				v.Usable = false
			case finding.MXTargetPrivate:
				var private []string
				for _, a := range h.Addresses {
					if !isPublic(a) {
						private = append(private, a)
					}
				}
				if len(private) == 0 {
					// Documentation addresses outside a documentation
					// domain: route judged them, trust it.
					private = h.Addresses
				}
				v.Notes = append(v.Notes, "✗ not reachable from the Internet: "+strings.Join(private, ", "))
				v.Usable = len(private) < len(h.Addresses)
			case finding.MXDuplicate:
				v.Notes = append(v.Notes, "listed more than once")
			default:
				v.Notes = append(v.Notes, "✗ "+string(id))
			}
		}
		if r.Details != nil {
			v.Badges = hostBadges(h, r.Details)
		}
		out[h.Name] = v
	}
	return out
}

// isPublic reports whether an address of a host can be reached from the
// Internet: outside every special-purpose block (RFC 6890), or in a
// documentation one, which test zones use for their public addresses.
func isPublic(s string) bool {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return false
	}
	c := ipclass.Of(ip)
	return c.Global() || c.Doc
}

// hostBadges are the marks of one exchange: STARTTLS and a valid
// certificate from the SMTP probe (RFC 3207), DANE from its TLSA records
// (RFC 7672), and forward-confirmed reverse DNS of its addresses. A badge
// whose facts were not gathered (SMTP not probed) is left out.
func hostBadges(h route.Host, f *check.Facts) []badge {
	var out []badge
	var probed, connected []*probe.Result
	refused := 0
	for _, res := range f.SMTP {
		switch {
		case res == nil || res.Host != h.Name:
		case res.Err != nil && res.Err.Kind == probe.KindForbidden:
			refused++
		default:
			probed = append(probed, res)
			if res.Connected {
				connected = append(connected, res)
			}
		}
	}
	switch {
	case refused > 0 && len(probed) == 0:
		out = append(out, badge{"SMTP", "off", "Not probed: this server does not connect to addresses outside the public Internet (smtp-target-refused)."})
	case len(probed) > 0 && len(connected) == 0:
		out = append(out, badge{"SMTP", "bad", "No address answered over SMTP."})
	case len(connected) > 0:
		out = append(out, starttlsBadge(connected))
		if bd, ok := certBadge(connected); ok {
			out = append(out, bd)
		}
	}
	if bd, ok := daneBadge(h, f, connected); ok {
		out = append(out, bd)
	}
	if bd, ok := ptrBadge(h, f); ok {
		out = append(out, bd)
	}
	return out
}

func starttlsBadge(rs []*probe.Result) badge {
	var without []string
	for _, r := range rs {
		if !r.StartTLS {
			without = append(without, r.Address.String())
		}
	}
	if len(without) > 0 {
		return badge{"STARTTLS", "bad", "No STARTTLS at " + prose.List(without) + ": mail travels in clear text."}
	}
	return badge{"STARTTLS", "ok", fmt.Sprintf("STARTTLS offered at %s.", prose.Count(len(rs), "address"))}
}

// certBadge judges the certificates of the sessions that offered
// STARTTLS; none did: no badge (the STARTTLS badge says it).
func certBadge(rs []*probe.Result) (badge, bool) {
	var bad []string
	days := -1
	tls := 0
	for _, r := range rs {
		if !r.StartTLS {
			continue
		}
		tls++
		switch {
		case r.TLS == nil:
			bad = append(bad, r.Address.String()+": no TLS session")
		case !r.TLS.Verified:
			bad = append(bad, r.Address.String()+": "+cmp.Or(r.TLS.VerifyError, "not verified"))
		case days < 0 || r.TLS.ExpiresInDays < days:
			days = r.TLS.ExpiresInDays
		}
	}
	switch {
	case tls == 0:
		return badge{}, false
	case len(bad) > 0:
		return badge{"certificate", "bad", "Certificate not valid: " + strings.Join(bad, "; ") + "."}, true
	}
	return badge{"certificate", "ok", fmt.Sprintf("Certificate valid for %s; expires in %s.", rs[0].Host, prose.Count(days, "day"))}, true
}

func daneBadge(h route.Host, f *check.Facts, connected []*probe.Result) (badge, bool) {
	i := slices.IndexFunc(f.DANE, func(d *dane.Result) bool { return d != nil && d.Host == h.Name })
	if i < 0 {
		return badge{}, false
	}
	d := f.DANE[i]
	switch {
	case len(d.Records) == 0:
		return badge{"DANE", "off", "No TLSA records at " + d.Name + ": DANE is not used."}, true
	case !d.Secure || !d.AddressSecure:
		return badge{"DANE", "bad", "TLSA records, but not DNSSEC-validated: senders ignore them."}, true
	}
	for _, r := range connected {
		if c := probe.MatchDANE(r, d); c.Status != probe.DANEMatch {
			return badge{"DANE", "bad", fmt.Sprintf("DANE %s at %s: %s", c.Status, r.Address, c.Reason)}, true
		}
	}
	if len(connected) == 0 {
		return badge{"DANE", "ok", "DNSSEC-signed TLSA records (not matched: SMTP was not probed)."}, true
	}
	return badge{"DANE", "ok", "DNSSEC-signed TLSA records match the certificate at every address."}, true
}

func ptrBadge(h route.Host, f *check.Facts) (badge, bool) {
	i := slices.IndexFunc(f.PTR, func(p probe.HostPTR) bool { return p.Host == h.Name })
	if i < 0 || len(f.PTR[i].Results) == 0 {
		return badge{}, false
	}
	var bad []string
	for _, r := range f.PTR[i].Results {
		switch {
		case len(r.Names) == 0:
			bad = append(bad, r.Address.String()+" has no PTR")
		case r.Confirmed == "":
			bad = append(bad, r.Address.String()+" → "+r.Names[0]+", which does not lead back")
		}
	}
	if len(bad) > 0 {
		return badge{"PTR", "bad", "Reverse DNS: " + strings.Join(bad, "; ") + "."}, true
	}
	return badge{"PTR", "ok", fmt.Sprintf("Reverse DNS confirmed for %s.", prose.Count(len(f.PTR[i].Results), "address"))}, true
}

// routeLabel says the route in one paragraph, for the picture's
// accessible name.
func routeLabel(r *check.Report) string {
	p := r.Plan
	switch p.Result {
	case route.ResultNullMX:
		return p.Domain + " publishes a Null MX: it accepts no mail."
	case route.ResultNXDomain:
		return p.Domain + " does not exist: mail to it bounces."
	case route.ResultNoMail:
		return p.Domain + " has no MX and no address: mail to it bounces."
	}
	if len(p.Tiers) == 0 {
		return "The route of " + p.Domain + " could not be computed; senders retry later."
	}
	var parts []string
	for i, t := range p.Tiers {
		names := make([]string, len(t.Hosts))
		for k, h := range t.Hosts {
			names[k] = h.Name
		}
		s := fmt.Sprintf("%s, preference %d: %s", ordinal(i+1), t.Preference, prose.List(names))
		if len(names) > 1 {
			s += ", in random order"
		}
		parts = append(parts, s)
	}
	lead := "Mail for " + p.Domain + " goes to"
	if p.Implicit {
		lead = p.Domain + " has no MX records; mail goes to its own address:"
	}
	return lead + " " + strings.Join(parts, "; then, if those are down, ") + "."
}

// ordinal is "1st", "2nd", "3rd", "4th"…
func ordinal(n int) string {
	suffix := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return fmt.Sprint(n) + suffix
}

// clipText cuts s to n characters, ending in "…".
func clipText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func esc(s string) string { return html.EscapeString(s) }
