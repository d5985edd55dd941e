package serve

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Problem is an error answer in the form of RFC 9457 ("Problem Details
// for HTTP APIs"), served as application/problem+json.
type Problem struct {
	Type     string `json:"type,omitempty"` // omitted: "about:blank" (RFC 9457 §3.1.1)
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// writeProblem answers with status and detail as problem+json; a positive
// retryAfter adds Retry-After in whole seconds (RFC 9110 §10.2.3). A
// browser asking for a page (not under /api/, accepting text/html) gets
// the same answer as a page it can show, with the same status and
// Retry-After, instead of raw JSON.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Cache-Control", "no-store")
	p := Problem{Title: http.StatusText(status), Status: status, Detail: detail, Instance: r.URL.Path}
	if wantsPage(r) {
		if page, err := problemPage(p, retryAfter); err == nil {
			writeHTML(w, status, page)
			return
		}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(p)
}

// wantsPage reports whether r is a browser's request for a page: outside
// the API, with text/html among what it accepts.
func wantsPage(r *http.Request) bool {
	return !strings.HasPrefix(r.URL.Path, "/api/") && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// problemPage is p as a page of the site.
func problemPage(p Problem, retryAfter time.Duration) ([]byte, error) {
	d := pageData{Title: p.Title + " · mxtrace", SkipTo: "the message", HeaderSearch: true,
		Heading: p.Title, Error: p.Detail}
	if retryAfter > 0 {
		d.Retry = "Try again in " + retryText(retryAfter) + "."
	}
	var b bytes.Buffer
	err := pages.ExecuteTemplate(&b, "status-page", d)
	return b.Bytes(), err
}

// retryText says a Retry-After for a person.
func retryText(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	if s == 1 {
		return "a second"
	}
	return strconv.Itoa(s) + " seconds"
}
