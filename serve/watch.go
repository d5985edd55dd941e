package serve

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/store"
	"github.com/mxtrace/mxtrace/watch"
)

// Watch in serve: the history mxtrace watch stores, read by anyone
// (GET /api/v1/history/{domain}, GET /api/v1/watches, the timeline on the
// report page, /watches), and the watch list changed only with the admin
// token (POST /api/v1/watches, DELETE /api/v1/watches/{domain}, and the
// forms on /watches). Without a Store every one of these routes answers
// 404: the server keeps no history.

// Limits of the watch routes.
const (
	// maxWatchBody caps the body of a watch added or removed (JSON or a
	// form): a domain, a period and a few alert targets.
	maxWatchBody = 16 << 10
	// maxAlertTargets bounds the alert targets of one watch.
	maxAlertTargets = 16
	// minEvery is the shortest period of a watch, as watch add takes it.
	minEvery = time.Minute
	// defaultEvery is a new watch's period when none is given, as watch
	// add's default.
	defaultEvery = time.Hour
	// maxHistoryResults bounds the results one history request reads
	// (newest first); older ones are left out and "more" says so.
	maxHistoryResults = 1000
	// defaultHistoryLimit and maxHistoryLimit bound the events of one
	// history answer (?limit=).
	defaultHistoryLimit = 100
	maxHistoryLimit     = 1000
	// storeTimeout bounds the store's reads for a report page, so a
	// database that hangs delays the report by that much at most.
	storeTimeout = 2 * time.Second
)

// watches reads the watched domains for the API and the page, or answers
// the problem (no store, or the store failed) and returns false.
func (s *Server) watches(w http.ResponseWriter, r *http.Request) ([]store.WatchStatus, bool) {
	if s.cfg.Store == nil {
		noStore(w, r)
		return nil, false
	}
	ws, err := s.cfg.Store.Watches(r.Context())
	if err != nil {
		s.storeFailed(w, r, err)
		return nil, false
	}
	return ws, true
}

// noStore answers a watch route on a server without a store.
func noStore(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, http.StatusNotFound, "this server keeps no history: mxtrace serve shows watched domains only when started with --db", 0)
}

// historyJSON is the body of GET /api/v1/history/{domain}: the object
// mxtrace history --json prints, and More when events or older results
// were left out (by ?limit= or by the bound on the results read).
type historyJSON struct {
	Domain string            `json:"domain"`
	Checks int               `json:"checks"`
	Events []watch.EventJSON `json:"events"`
	More   bool              `json:"more,omitempty"`
	// latest is the newest result read, good the newest that is not a
	// temporary failure (nil: none); hidden is the events left out.
	latest, good *store.Result
	hidden       int
	cut          bool
}

// readHistory builds domain's timeline from at most maxResults results
// at or after since, newest first, with at most limit events, as mxtrace
// history does. The results are read light (no report), and the newest
// good one whole, for its certificates.
func (s *Server) readHistory(ctx context.Context, domain string, since time.Time, limit, maxResults int) (*historyJSON, error) {
	results, err := s.cfg.Store.Summaries(ctx, domain, since, maxResults+1)
	if err != nil {
		return nil, err
	}
	h := &historyJSON{Domain: domain, Events: []watch.EventJSON{}}
	if h.cut = len(results) > maxResults; h.cut {
		results = results[:maxResults]
	}
	if len(results) == 0 {
		return h, nil
	}
	h.Checks, h.latest = len(results), &results[0]
	if i := slices.IndexFunc(results, func(r store.Result) bool { return !r.Temporary }); i >= 0 {
		if h.good, err = s.cfg.Store.Result(ctx, results[i].ID); err != nil {
			return nil, err
		}
	}
	from := since
	if h.cut {
		from = results[len(results)-1].At
	}
	changes, err := s.cfg.Store.Changes(ctx, domain, from, 0)
	if err != nil {
		return nil, err
	}
	for _, e := range watch.Timeline(results, changes, since.IsZero() && !h.cut) {
		h.Events = append(h.Events, e.JSON())
	}
	if len(h.Events) > limit {
		h.hidden = len(h.Events) - limit
		h.Events = h.Events[:limit]
	}
	h.More = h.hidden > 0 || h.cut
	return h, nil
}

// apiHistory answers a domain's timeline, newest first: ?since= (a time,
// a date, or a while ago such as 36h or 7d) and ?limit= (events, 1 to
// 1000, default 100) as mxtrace history's flags. A domain with nothing
// stored is a 404.
func (s *Server) apiHistory(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Store == nil {
		noStore(w, r)
		return
	}
	name, ok := pathDomain(w, r, "give a mail domain instead")
	if !ok {
		return
	}
	q := r.URL.Query()
	since, err := watch.ParseSince(q.Get("since"), time.Now())
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, "since "+err.Error(), 0)
		return
	}
	limit := defaultHistoryLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxHistoryLimit {
			writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("limit %q: want a number from 1 to %d", v, maxHistoryLimit), 0)
			return
		}
		limit = n
	}
	h, err := s.readHistory(r.Context(), name.String(), since, limit, maxHistoryResults)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	if h.Checks == 0 {
		detail := "no result is stored for " + name.String() + ": it is not watched, or not checked yet"
		if !since.IsZero() {
			detail = "no result is stored for " + name.String() + " since " + since.Format(time.RFC3339)
		}
		writeProblem(w, r, http.StatusNotFound, detail, 0)
		return
	}
	writeJSON(w, r, h)
}

// watchJSON is a watch as GET /api/v1/watches lists it: what mxtrace
// watch list --json prints, except the alert targets, which are only
// counted, since reading needs no token and a webhook URL or an e-mail
// address is not for strangers. The answer to an admin's POST has them.
type watchJSON struct {
	Domain     string    `json:"domain"`
	Every      string    `json:"every"`
	EverySec   int64     `json:"every_seconds"`
	Alerts     []string  `json:"alerts,omitempty"`
	AlertCount int       `json:"alert_count"`
	Added      time.Time `json:"added"`
	NextRun    time.Time `json:"next_run"`
	LastRun    time.Time `json:"last_run,omitzero"`
	LastStatus string    `json:"last_status,omitempty"`
	// Checking: a worker holds the watch's lease now.
	Checking bool `json:"checking,omitempty"`
}

func newWatchJSON(x store.WatchStatus, now time.Time) watchJSON {
	return watchJSON{
		Domain: x.Domain, Every: watch.ShortEvery(x.Every), EverySec: int64(x.Every / time.Second), AlertCount: len(x.Alerts),
		Added: x.Added.UTC(), NextRun: x.NextRun.UTC(), LastRun: x.LastRun.UTC(), LastStatus: x.LastStatus,
		Checking: x.Worker != "" && x.LeaseUntil.After(now),
	}
}

// apiWatches lists the watched domains, by domain.
func (s *Server) apiWatches(w http.ResponseWriter, r *http.Request) {
	ws, ok := s.watches(w, r)
	if !ok {
		return
	}
	now := time.Now()
	out := struct {
		Watches []watchJSON `json:"watches"`
	}{Watches: make([]watchJSON, 0, len(ws))}
	for _, x := range ws {
		out.Watches = append(out.Watches, newWatchJSON(x, now))
	}
	writeJSON(w, r, out)
}

// watchRequest is the body of POST /api/v1/watches: the arguments of
// mxtrace watch add DOMAIN --every EVERY --alert TARGET...
type watchRequest struct {
	Domain string   `json:"domain"`
	Every  string   `json:"every"`
	Alerts []string `json:"alerts"`
}

// apiAddWatch adds a watch, or changes the period and alert targets of
// one (201 Created for a new one, 200 for a change), with the admin token.
func (s *Server) apiAddWatch(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Store == nil {
		noStore(w, r)
		return
	}
	if !s.admin(w, r, bearer(r)) {
		return
	}
	var req watchRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeProblem(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is over its limit of %d bytes", maxWatchBody), 0)
			return
		}
		writeProblem(w, r, http.StatusBadRequest, `the body is not a watch: want JSON {"domain": "example.com", "every": "1h", "alerts": ["https://…", "mailto:…"]}: `+err.Error(), 0)
		return
	}
	ws, created, err := s.addWatch(r.Context(), req)
	if err != nil {
		s.watchFailed(w, r, err)
		return
	}
	out := newWatchJSON(ws, time.Now())
	out.Alerts = ws.Alerts
	if out.Alerts == nil {
		out.Alerts = []string{}
	}
	b, err := report.AppendJSON(nil, out)
	if err != nil {
		writeProblem(w, r, http.StatusInternalServerError, "encoding the answer failed", 0)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	status := http.StatusOK
	if created {
		// RFC 9110 §15.3.2: 201 with the new resource's address.
		w.Header().Set("Location", "/api/v1/history/"+ws.Domain)
		status = http.StatusCreated
	}
	w.WriteHeader(status)
	w.Write(b)
}

// apiRemoveWatch stops watching a domain (204; 404 when it is not
// watched), with the admin token. Its history stays.
func (s *Server) apiRemoveWatch(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Store == nil {
		noStore(w, r)
		return
	}
	if !s.admin(w, r, bearer(r)) {
		return
	}
	if err := s.removeWatch(r.Context(), r.PathValue("domain")); err != nil {
		s.watchFailed(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// badWatch is the error of a watch request that is bad input (400), or
// of a domain that is not watched (404 when notFound).
type badWatch struct {
	msg      string
	notFound bool
}

func (e *badWatch) Error() string { return e.msg }

// watchFailed answers err from addWatch or removeWatch.
func (s *Server) watchFailed(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := errors.AsType[*badWatch](err); ok {
		status := http.StatusBadRequest
		if e.notFound {
			status = http.StatusNotFound
		}
		writeProblem(w, r, status, e.msg, 0)
		return
	}
	s.storeFailed(w, r, err)
}

// storeFailed answers a store that failed: 503, logged; the detail says
// no more than that (the error may name the database).
func (s *Server) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
		s.cutShort(w, r, ErrDeadline)
		return
	}
	s.log.Error("serve: store", "path", r.URL.Path, "error", err)
	writeProblem(w, r, http.StatusServiceUnavailable, "the history database failed; try again later", 0)
}

// addWatch checks req as mxtrace watch add checks its arguments and
// stores the watch as watch add does (watch.Update).
func (s *Server) addWatch(ctx context.Context, req watchRequest) (store.WatchStatus, bool, error) {
	name, err := parseDomain(req.Domain)
	if err != nil {
		return store.WatchStatus{}, false, &badWatch{msg: "domain " + strconv.Quote(req.Domain) + ": " + report.Plain(err.Error())}
	}
	every := defaultEvery
	if strings.TrimSpace(req.Every) != "" {
		if every, err = time.ParseDuration(strings.TrimSpace(req.Every)); err != nil {
			return store.WatchStatus{}, false, &badWatch{msg: fmt.Sprintf("every %q: want a period such as 30m, 1h or 24h", req.Every)}
		}
	}
	if every < minEvery {
		return store.WatchStatus{}, false, &badWatch{msg: fmt.Sprintf("every %q: want at least %v", req.Every, minEvery)}
	}
	if len(req.Alerts) > maxAlertTargets {
		return store.WatchStatus{}, false, &badWatch{msg: fmt.Sprintf("%d alert targets: at most %d", len(req.Alerts), maxAlertTargets)}
	}
	var targets []string
	for _, a := range req.Alerts {
		t, err := watch.ParseTarget(a)
		if err != nil {
			return store.WatchStatus{}, false, &badWatch{msg: report.Plain(err.Error())}
		}
		if ts := t.String(); !slices.Contains(targets, ts) {
			targets = append(targets, ts)
		}
	}
	old, err := s.cfg.Store.Watch(ctx, name.String())
	if err != nil {
		return store.WatchStatus{}, false, err
	}
	ws, isNew := watch.Update(old, store.Watch{Domain: name.String(), Every: every, Alerts: targets}, time.Now().UTC()), old == nil
	if err := s.cfg.Store.AddWatch(ctx, ws.Watch); err != nil {
		return store.WatchStatus{}, false, err
	}
	s.log.Info("serve: watch added", "domain", ws.Domain, "every", every, "alerts", len(targets), "new", isNew)
	return ws, isNew, nil
}

// removeWatch stops watching the domain raw names.
func (s *Server) removeWatch(ctx context.Context, raw string) error {
	name, err := parseDomain(raw)
	if err != nil {
		return &badWatch{msg: "domain " + strconv.Quote(raw) + ": " + report.Plain(err.Error())}
	}
	removed, err := s.cfg.Store.RemoveWatch(ctx, name.String())
	if err != nil {
		return err
	}
	if !removed {
		return &badWatch{msg: name.String() + " is not watched (GET /api/v1/watches lists what is)", notFound: true}
	}
	s.log.Info("serve: watch removed", "domain", name.String())
	return nil
}

// bearer is the token of r's Authorization header (RFC 6750 §2.1:
// "Bearer" and the token; the scheme is case-insensitive, RFC 9110
// §11.1), or "" when there is none.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// admin reports whether token is the admin token, or answers: 403 when
// the server has none (changes are off), 401 with a challenge when no
// token was given, and 401 with error="invalid_token" for a wrong one
// (RFC 6750 §3, §3.1: a token that is not valid asks for another, it does
// not forbid).
func (s *Server) admin(w http.ResponseWriter, r *http.Request, token string) bool {
	switch {
	case s.cfg.AdminToken == "":
		writeProblem(w, r, http.StatusForbidden, "adding and removing watches is off on this server: it was started without --admin-token-file (reading needs no token)", 0)
		return false
	case token == "":
		w.Header().Set("WWW-Authenticate", `Bearer realm="mxtrace"`)
		writeProblem(w, r, http.StatusUnauthorized, "adding and removing watches needs the admin token: Authorization: Bearer TOKEN", 0)
		return false
	case !tokenEqual(token, s.cfg.AdminToken):
		s.log.Warn("serve: wrong admin token", "path", r.URL.Path, "client", clientAddr(r, s.cfg.TrustProxy).String())
		w.Header().Set("WWW-Authenticate", `Bearer realm="mxtrace", error="invalid_token", error_description="not the admin token"`)
		writeProblem(w, r, http.StatusUnauthorized, "that is not the admin token", 0)
		return false
	}
	return true
}

// tokenEqual compares two tokens in time independent of where they
// differ and of their lengths: both are hashed first, so
// subtle.ConstantTimeCompare always compares 32 bytes.
func tokenEqual(given, want string) bool {
	a, b := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// domainOf is raw as a canonical name, or "" when it is not one.
func domainOf(raw string) string {
	n, err := dnsname.Parse(raw)
	if err != nil {
		return ""
	}
	return n.String()
}
