package serve

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestProblemAsPage: a browser asking for a page gets 404, 429 and 503 as
// pages of the site, with the status and Retry-After a script would get;
// the API, and a client that does not accept HTML, get problem+json.
func TestProblemAsPage(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	cfg := testConfig(t)
	cfg.MaxChecks = 1
	entered := make(chan struct{}, 1)
	held := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // a retried request must not wait here for ever
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	_, base := serveTest(t, cfg, map[string]http.Handler{"/d/{domain}/events": held})
	go http.Get(base + "/d/held.test/events") // takes the one MaxChecks slot
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

	get := func(base, path, accept string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	type want struct {
		status      int
		contentType string
		text        string
		retryAfter  bool
	}
	for _, c := range []struct {
		name, path, accept string
		want               want
	}{
		{"404 page", "/nowhere", browser, want{404, "text/html", "There is no page at this address", false}},
		{"404 to a script", "/nowhere", "*/*", want{404, "application/problem+json", `"status":404`, false}},
		{"404 in the API", "/api/v1/nowhere", browser, want{404, "application/problem+json", "no such API route", false}},
	} {
		resp, body := get(base, c.path, c.accept)
		if resp.StatusCode != c.want.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), c.want.contentType) || !strings.Contains(body, c.want.text) {
			t.Errorf("%s: %d %s %.200q, want %d %s containing %q", c.name, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.want.status, c.want.contentType, c.want.text)
		}
	}

	// Saturated: the report page is a page saying so, with Retry-After.
	// The held request holds the slot once its handler runs; nothing
	// else expensive was asked before, so it cannot have been refused.
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the held request never reached its handler")
	}
	resp, body := get(base, "/d/other.test", browser)
	if resp.StatusCode != 503 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Try again in") || !strings.Contains(body, `<html lang="en">`) {
		t.Errorf("saturated page: %d %s Retry-After %q %.300q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), body)
	}

	// Rate-limited: one request a day, and it is spent.
	cfg = testConfig(t)
	cfg.Rate, cfg.Burst = 1.0/86400, 1
	_, limited := serveTest(t, cfg, nil)
	get(limited, "/", browser)
	resp, body = get(limited, "/", browser)
	if resp.StatusCode != 429 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too Many Requests") {
		t.Errorf("rate-limited page: %d %s Retry-After %q %.300q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), body)
	}
	resp, body = get(limited, "/api/v1/route/example.test", browser)
	if resp.StatusCode != 429 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("rate-limited API: %d %s %.200q, want problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// TestAppendEvent: data of several lines is several data lines (a CR LF
// is one line break), and empty data still makes an event.
func TestAppendEvent(t *testing.T) {
	for _, c := range []struct{ name, data, want string }{
		{"area", `{"a":1}`, "event: area\ndata: {\"a\":1}\n\n"},
		{"area", "{\"a\":1}\n", "event: area\ndata: {\"a\":1}\n\n"},
		{"route", "<p>\r\none</p>\n<p>two</p>", "event: route\ndata: <p>\ndata: one</p>\ndata: <p>two</p>\n\n"},
		{"done", "", "event: done\ndata:\n\n"},
	} {
		if got := string(appendEvent(nil, c.name, []byte(c.data))); got != c.want {
			t.Errorf("appendEvent(%q, %q) = %q, want %q", c.name, c.data, got, c.want)
		}
	}
}
