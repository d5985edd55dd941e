package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeQuickStart runs every mxtrace command of README.md's quick
// start, as written (from the repository's root, where the reader runs
// them), and requires exit status 0: a first command that ends in "exit
// status 1" looks broken. The quick start must show mxtrace version.
func TestReadmeQuickStart(t *testing.T) {
	text, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(text), "\n## Quick start")
	if !ok {
		t.Fatal("README.md has no Quick start section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var commands [][]string
	inCode := false
	for line := range strings.Lines(section) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "```"):
			inCode = !inCode
		case inCode && strings.HasPrefix(line, "go run ./cmd/mxtrace "):
			if strings.ContainsAny(line, `'"|<>;&$`+"`") {
				t.Fatalf("%q: quoting or shell syntax this test does not run; keep quick-start commands plain", line)
			}
			commands = append(commands, strings.Fields(line)[3:])
		}
	}
	if len(commands) < 3 || !strings.Contains(section, "go run ./cmd/mxtrace version\n") {
		t.Fatalf("found %d mxtrace commands in the quick start, and it must show mxtrace version: %q", len(commands), commands)
	}
	t.Chdir("../..")
	for _, args := range commands {
		code, out, errOut := mxtrace(t, args...)
		if code != exitOK || out == "" {
			t.Errorf("mxtrace %s: exit %d, want 0\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
}

// TestReadmeServe runs the serve command of README.md's serve section, as
// written but on a free port, and asks it every API address the section's
// examples ask (POST with the body printf gives, where curl sends one),
// requiring 200 and a body: the commands a reader copies work.
func TestReadmeServe(t *testing.T) {
	text, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(text), "\n## Web page and API")
	if !ok {
		t.Fatal("README.md has no serve section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var serveArgs []string
	type request struct{ method, path, body string }
	var requests []request
	url := regexp.MustCompile(`http://127\.0\.0\.1:8025(/api/[^\s']*)`)
	printf := regexp.MustCompile(`printf '([^']*)'`)
	inCode := false
	for line := range strings.Lines(section) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "```"):
			inCode = !inCode
		case inCode && strings.HasPrefix(line, "go run ./cmd/mxtrace serve "):
			serveArgs = strings.Fields(line)[4:]
		case inCode && url.MatchString(line):
			rq := request{method: http.MethodGet, path: url.FindStringSubmatch(line)[1]}
			if strings.Contains(line, "--data-binary @-") {
				m := printf.FindStringSubmatch(line)
				if m == nil {
					t.Fatalf("%q: a POST without a printf body", line)
				}
				rq.method, rq.body = http.MethodPost, strings.ReplaceAll(m[1], `\n`, "\n")
			}
			requests = append(requests, rq)
		}
	}
	if serveArgs == nil || len(requests) < 3 {
		t.Fatalf("the serve section shows serve %q and %d API requests; want the command and at least 3", serveArgs, len(requests))
	}
	t.Chdir("../..")
	ctx, cancel := context.WithCancel(t.Context())
	base, exit, stderr := startServe(t, ctx, serveArgs...)
	for _, rq := range requests {
		req, err := http.NewRequestWithContext(t.Context(), rq.method, strings.TrimSuffix(base, "/")+rq.path, strings.NewReader(rq.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("%s %s: %d, %d octets, %v\n%s", rq.method, rq.path, resp.StatusCode, len(body), err, body)
		}
	}
	cancel()
	if code := <-exit; code != exitOK {
		t.Errorf("serve exited with %d:\n%s", code, stderr)
	}
}
