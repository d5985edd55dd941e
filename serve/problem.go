package serve

import (
	"encoding/json"
	"net/http"
	"strconv"
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
// retryAfter adds Retry-After in whole seconds (RFC 9110 §10.2.3).
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Problem{Title: http.StatusText(status), Status: status, Detail: detail, Instance: r.URL.Path})
}
