package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/internal/prose"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/spf"
)

// The web page: server-rendered with html/template from web/templates,
// assets from web/static, both embedded, so the binary is the whole site
// and no page loads anything from another host. The page works without
// JavaScript (the report is sent when the check is done, after a
// "checking…" line flushed at once); web/static/live.js fills the areas in
// as they finish from /d/{domain}/events, a stream of the same templates'
// HTML fragments.

//go:embed web/templates/*.html
var templateFS embed.FS

//go:embed web/static
var staticFS embed.FS

// pageWait is how long a report page waits for the check before it sends
// its head and a "checking…" line: a cached or quick check comes whole.
const pageWait = 300 * time.Millisecond

// assets maps each static file to its URL with a content hash, so it can
// be cached for good and a new binary's assets are fetched anew.
var assets = func() map[string]string {
	m := map[string]string{}
	fs.WalkDir(staticFS, "web/static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		name := strings.TrimPrefix(p, "web/static/")
		m[name] = "/static/" + name + "?v=" + hex.EncodeToString(sum[:6])
		return nil
	})
	return m
}()

// pages are the templates, parsed once; a template that does not parse
// fails every test.
var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"asset": func(name string) (string, error) {
		if u, ok := assets[name]; ok {
			return u, nil
		}
		return "", fmt.Errorf("serve: no asset %q", name)
	},
	"mark":    statusMark,
	"count":   prose.Count,
	"list":    prose.List,
	"code":    inlineCode,
	"add":     func(a, b int) int { return a + b },
	"lookups": spfLookups,
}).ParseFS(templateFS, "web/templates/*.html"))

// pageData is what the layout and the pages are executed with.
type pageData struct {
	Title, SkipTo string
	HeaderSearch  bool
	// WatchLink: the header links to /watches (the server has a store);
	// QueueLink: to /queue (it has a relay's queue).
	WatchLink, QueueLink bool
	// The report page's domain, for its heading and links.
	Domain, Unicode, JSON, Events, Timeout string
	// The error page's heading, the input and what is wrong with it;
	// Retry says when to come back (a status page: 429, 503).
	Heading, Query, Error, Retry string
	// History is the report page's timeline section: nil when the
	// server has no store or the domain no stored result.
	History *timelineView
}

// statusMark is the symbol beside a status, so colour is never the only
// sign of it.
func statusMark(status string) string {
	switch status {
	case "ok", "pass":
		return "✓"
	case "error":
		return "✗"
	case "warning", "failed":
		return "!"
	}
	return "i"
}

// inlineCode escapes s and sets the `quoted` parts of a fix as code.
func inlineCode(s string) template.HTML {
	parts := strings.Split(s, "`")
	if len(parts)%2 == 0 {
		return template.HTML(template.HTMLEscapeString(s))
	}
	var b strings.Builder
	for i, p := range parts {
		if i%2 == 1 {
			b.WriteString("<code>" + template.HTMLEscapeString(p) + "</code>")
		} else {
			b.WriteString(template.HTMLEscapeString(p))
		}
	}
	return template.HTML(b.String())
}

// spfLookups says a record's DNS lookups, with its includes' (RFC 7208
// §4.6.4: nested includes count toward the limit).
func spfLookups(n *spf.Node) string {
	s := prose.Count(n.Lookups, "lookup")
	if n.TotalLookups != n.Lookups {
		s += fmt.Sprintf(", %d with includes", n.TotalLookups)
	}
	if n.VoidLookups > 0 {
		s += ", " + prose.Count(n.VoidLookups, "void lookup")
	}
	return s
}

// render executes the named templates into one buffer and writes it with
// status: a template error becomes a 500, not half a page.
func (s *Server) render(w http.ResponseWriter, status int, data any, names ...string) {
	var b bytes.Buffer
	for _, n := range names {
		if err := pages.ExecuteTemplate(&b, n, data); err != nil {
			s.log.Error("page template", "template", n, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
	}
	writeHTML(w, status, b.Bytes())
}

// writeHTML answers with a whole page.
func writeHTML(w http.ResponseWriter, status int, page []byte) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(status)
	w.Write(page)
}

// pageHome is the search page.
func (s *Server) pageHome(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, s.nav(pageData{Title: "mxtrace: where does a domain's mail go?", SkipTo: "the search"}), "home")
}

// pageSearch is where the search form goes (GET /d?domain=): a valid
// name is redirected to its report's shareable address, 303 See Other
// (RFC 9110 §15.4.4); an invalid one gets the error page.
func (s *Server) pageSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("domain")
	name, err := parseDomain(q)
	if err != nil {
		s.pageInvalid(w, q, err)
		return
	}
	http.Redirect(w, r, reportURL(name), http.StatusSeeOther)
}

// reportURL is the shareable address of name's report.
func reportURL(name dnsname.Name) string { return "/d/" + url.PathEscape(name.String()) }

// parseDomain reads a domain or e-mail address as the command line does,
// with its message for an IP address.
func parseDomain(s string) (dnsname.Name, error) {
	n, err := dnsname.Parse(s)
	if e, ok := errors.AsType[*dnsname.Error](err); ok && e.Address {
		return "", fmt.Errorf("%w; give a mail domain instead", err)
	}
	return n, err
}

// pageNotFound answers a path no route serves with a page saying so.
func (s *Server) pageNotFound(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, http.StatusNotFound, "There is no page at this address. Reports are at /d/ followed by a domain, such as /d/example.com.", 0)
}

// pageInvalid answers 400 with the error page for input.
func (s *Server) pageInvalid(w http.ResponseWriter, input string, err error) {
	s.render(w, http.StatusBadRequest, s.nav(pageData{
		Title: "Not a domain name · mxtrace", SkipTo: "the search",
		Heading: "That is not a domain name", Query: input, Error: err.Error(),
	}), "error-page")
}

// pageDomain is the report of one domain (GET /d/{domain}).
func (s *Server) pageDomain(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("domain")
	name, err := parseDomain(raw)
	if err != nil {
		s.pageInvalid(w, raw, err)
		return
	}
	if raw != name.String() {
		// One address per report: an e-mail address, capitals or a
		// Unicode name lead to the canonical A-label one.
		http.Redirect(w, r, reportURL(name), http.StatusMovedPermanently)
		return
	}
	data := s.nav(pageData{
		Title: name.Unicode() + " · mxtrace", SkipTo: "the report", HeaderSearch: true,
		Domain: name.String(), JSON: "/api/v1/check/" + name.String(), Events: reportURL(name) + "/events",
		History: s.timeline(r.Context(), name.String()),
	})
	if u := name.Unicode(); u != name.String() {
		data.Unicode = u
	}
	if s.cfg.Timeout > 0 {
		data.Timeout = s.cfg.Timeout.String()
	}
	// The page, its events stream and its JSON link share one check
	// through the hub.
	run := s.checkRun(r.Context(), name, checkOptions{})
	wait, cancel := context.WithTimeout(r.Context(), pageWait)
	rep, err := run.Wait(wait)
	cancel()
	if rep != nil {
		var b bytes.Buffer
		if err := s.writeReport(&b, name, rep, err, data, "report-head"); err != nil {
			s.log.Error("page template", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		writeHTML(w, http.StatusOK, b.Bytes())
		return
	}
	if r.Context().Err() != nil {
		return
	}
	// The check takes a while: the head and a "checking…" line now, so
	// the browser shows progress (and live.js can stream the areas), the
	// report when it is done.
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	for _, n := range []string{"report-head", "progress"} {
		if err := pages.ExecuteTemplate(w, n, data); err != nil {
			s.log.Error("page template", "template", n, "err", err)
			return
		}
	}
	http.NewResponseController(w).Flush()
	if rep, err = run.Wait(r.Context()); rep == nil {
		return // the client went away
	}
	if err := s.writeReport(w, name, rep, err, data); err != nil {
		s.log.Error("page template", "err", err)
	}
}

// writeReport writes the finished report (checkErr: ErrDeadline when it
// ran out of time), after the templates named in before, and the page's
// end.
func (s *Server) writeReport(w io.Writer, name dnsname.Name, rep *check.Report, checkErr error, data pageData, before ...string) error {
	for _, n := range before {
		if err := pages.ExecuteTemplate(w, n, data); err != nil {
			return err
		}
	}
	if err := pages.ExecuteTemplate(w, "report", newReportView(name, rep, checkErr)); err != nil {
		return err
	}
	if h := data.History.withReport(rep); h != nil {
		if err := pages.ExecuteTemplate(w, "history", h); err != nil {
			return err
		}
	}
	return pages.ExecuteTemplate(w, "bottom", data)
}

// pageEvents streams the check of one domain as server-sent events for
// live.js: "route" with the route's HTML once the plan is known, "area"
// with each area's HTML as it is judged, then "done" (HTML Living
// Standard §9.2, server-sent events).
func (s *Server) pageEvents(w http.ResponseWriter, r *http.Request) {
	name, err := parseDomain(r.PathValue("domain"))
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error(), 0)
		return
	}
	rc := startStream(w)
	order := map[string]int{}
	for i, c := range check.Checks() {
		order[string(c.Area)] = i
	}
	send := func(event string, html []byte) {
		w.Write(appendEvent(nil, event, html))
		rc.Flush()
	}
	for e := range s.checkRun(r.Context(), name, checkOptions{}).Events(r.Context()) {
		var b bytes.Buffer
		var err error
		switch d := e.Data.(type) {
		case *route.Plan:
			// The route as soon as it is known; its badges come with the
			// finished report.
			if err = pages.ExecuteTemplate(&b, "route", newReportView(name, &check.Report{Plan: d}, nil)); err == nil {
				send("route", b.Bytes())
			}
		case check.AreaResult:
			if err = pages.ExecuteTemplate(&b, "area", newAreaView(d, order[string(d.Area)])); err == nil {
				send("area", b.Bytes())
			}
		}
		if err != nil {
			s.log.Error("page template", "err", err)
		}
	}
	send("done", nil)
}

// pageStatic serves the embedded assets; an address with the content
// hash (as pages link them) may be cached for good.
func (s *Server) pageStatic(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/static/")
	u, ok := assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.URL.RawQuery != "" && "/static/"+name+"?"+r.URL.RawQuery == u {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=300")
	}
	http.ServeFileFS(w, r, staticFS, "web/static/"+name)
}
