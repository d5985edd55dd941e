package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// list is n domains, one a line.
func list(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "d%d.example\n", i)
	}
	return b.String()
}

// planOf is a small plan for name, as a Job returns it.
func planOf(name dnsname.Name, res route.Result) *route.Plan {
	return &route.Plan{Schema: route.SchemaVersion, Domain: name.String(), Result: res, AliasChain: []string{},
		Records: []route.Record{}, Tiers: []route.Tier{}, Order: []string{}, Findings: []finding.Finding{}}
}

// instant answers every domain at once with an "ok" plan.
func instant(_ context.Context, name dnsname.Name) (any, error) {
	return planOf(name, route.ResultOK), nil
}

// domains returns the "domain" member of every line, checking that each
// line is one complete JSON object.
func domains(t *testing.T, out string) []string {
	t.Helper()
	var ds []string
	if out != "" && !strings.HasSuffix(out, "\n") {
		t.Errorf("output does not end with a newline: %q", out[max(0, len(out)-40):])
	}
	for l := range strings.Lines(out) {
		var v struct {
			Domain string `json:"domain"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %d is not a JSON object: %v: %q", len(ds)+1, err, l)
		}
		ds = append(ds, v.Domain)
	}
	return ds
}

func names(n int) []string {
	ds := make([]string, n)
	for i := range ds {
		ds[i] = fmt.Sprintf("d%d.example", i)
	}
	return ds
}

// TestOrder: whatever order the workers finish in (random delays, some
// long), the lines come out in input order, each once; and the pipeline
// never holds more than its window, nor works on more than its workers.
func TestOrder(t *testing.T) {
	const n = 3000
	job := func(ctx context.Context, name dnsname.Name) (any, error) {
		d := time.Duration(rand.N(300)) * time.Microsecond
		if rand.N(50) == 0 {
			d = 20 * time.Millisecond // a straggler holds the window
		}
		time.Sleep(d)
		return planOf(name, route.ResultOK), nil
	}
	for _, unordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("unordered=%v", unordered), func(t *testing.T) {
			var out bytes.Buffer
			cfg := Config{Job: job, Concurrency: 32, Window: 64, Unordered: unordered}
			sum, err := Run(t.Context(), Lines(strings.NewReader(list(n))), &out, cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, want := domains(t, out.String()), names(n)
			if !unordered && !slices.Equal(got, want) {
				t.Fatalf("lines out of input order (first 5: %q)", got[:5])
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("%d lines, not each entry once", len(got))
			}
			if sum.Written != n || sum.Results[route.ResultOK] != n {
				t.Errorf("summary: written %d, ok %d; want %d", sum.Written, sum.Results[route.ResultOK], n)
			}
			if sum.MaxInFlight > 32 || sum.MaxInFlight < 2 {
				t.Errorf("max in flight %d, want 2..32", sum.MaxInFlight)
			}
			if sum.MaxReordered > 64 || (!unordered && sum.MaxReordered < 2) || (unordered && sum.MaxReordered != 0) {
				t.Errorf("max reordered %d, want up to the window (64), none unordered", sum.MaxReordered)
			}
		})
	}
}

// TestInvalidEntries: an entry that is not a domain gets its own line, an
// error object in place, with its kind and input line.
func TestInvalidEntries(t *testing.T) {
	var out bytes.Buffer
	sum, err := Run(t.Context(), Lines(strings.NewReader("a.example\nbad..name\n# c\nb.example\n")), &out, Config{Job: instant})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %q", len(lines), out.String())
	}
	var e map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"schema": 1.0, "domain": "bad..name", "result": "error", "kind": "invalid-input", "line": 2.0}
	for k, v := range want {
		if e[k] != v {
			t.Errorf("%s = %v, want %v (%s)", k, e[k], v, lines[1])
		}
	}
	if msg, _ := e["error"].(string); !strings.Contains(msg, "empty label") {
		t.Errorf("error %q does not say why", msg)
	}
	if sum.Errors[KindInvalidInput] != 1 || sum.Results[route.ResultError] != 1 || sum.Results[route.ResultOK] != 2 {
		t.Errorf("summary %+v", sum)
	}
}

// flaky fails each domain with err its first fails attempts.
type flaky struct {
	fails    int
	err      error
	attempts atomic.Int64
}

func (f *flaky) job(_ context.Context, name dnsname.Name) (any, error) {
	if int(f.attempts.Add(1)) <= f.fails {
		p := planOf(name, route.ResultError)
		p.Error = f.err.Error()
		return p, f.err
	}
	return planOf(name, route.ResultOK), nil
}

func TestRetries(t *testing.T) {
	timeout := &resolve.Error{Rcode: -1, Err: resolve.ErrTimeout}
	servfail := &resolve.Error{Rcode: 2, Err: resolve.ErrServerFailure}
	refused := &resolve.Error{Rcode: 5, Err: resolve.ErrRefused}
	for _, tt := range []struct {
		name         string
		fails        int
		err          error
		retries      int
		wantAttempts int64
		wantResult   route.Result
		wantKind     ErrorKind
	}{
		{"time-out then an answer", 2, timeout, 2, 3, route.ResultOK, ""},
		{"SERVFAIL then an answer", 1, servfail, 3, 2, route.ResultOK, ""},
		{"time-outs beyond the retries", 5, timeout, 2, 3, route.ResultError, KindTimeout},
		{"no retries", 1, servfail, 0, 1, route.ResultError, KindServFail},
		{"REFUSED is not retried", 3, refused, 3, 1, route.ResultError, KindRefused},
		{"a per-attempt deadline is retried", 1, context.DeadlineExceeded, 1, 2, route.ResultOK, ""},
		{"an incomplete plan is retried", 1, fmt.Errorf("%w: %w", ErrIncomplete, timeout), 1, 2, route.ResultOK, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &flaky{fails: tt.fails, err: tt.err}
			var out bytes.Buffer
			sum, err := Run(t.Context(), Lines(strings.NewReader("a.example\n")), &out, Config{Job: f.job, Retries: tt.retries, Backoff: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if got := f.attempts.Load(); got != tt.wantAttempts {
				t.Errorf("%d attempts, want %d", got, tt.wantAttempts)
			}
			if sum.Results[tt.wantResult] != 1 || sum.Written != 1 {
				t.Errorf("results %v, want one %s", sum.Results, tt.wantResult)
			}
			if tt.wantKind != "" && sum.Errors[tt.wantKind] != 1 {
				t.Errorf("errors %v, want one %s", sum.Errors, tt.wantKind)
			}
			if wantRetried := int64(0); tt.wantAttempts > 1 {
				wantRetried = 1
				if sum.Retried != wantRetried {
					t.Errorf("retried %d, want %d", sum.Retried, wantRetried)
				}
			}
		})
	}
}

// TestBackoffJitter: on a fake clock (testing/synctest), the wait before
// retry n is random, above zero and at most Backoff × 2ⁿ⁻¹; the waits of
// different domains differ.
func TestBackoffJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const domainsN = 20
		stamps := make([][]time.Time, domainsN)
		job := func(_ context.Context, name dnsname.Name) (any, error) {
			var i int
			fmt.Sscanf(name.String(), "d%d.example", &i)
			stamps[i] = append(stamps[i], time.Now())
			return planOf(name, route.ResultError), &resolve.Error{Rcode: -1, Err: resolve.ErrTimeout}
		}
		const backoff = time.Second
		if _, err := Run(t.Context(), Lines(strings.NewReader(list(domainsN))), io.Discard, Config{Job: job, Retries: 4, Backoff: backoff, Concurrency: domainsN}); err != nil {
			t.Fatal(err)
		}
		firsts := map[time.Duration]bool{}
		for i, s := range stamps {
			if len(s) != 5 {
				t.Fatalf("domain %d: %d attempts, want 5", i, len(s))
			}
			for k := 1; k < len(s); k++ {
				if gap, bound := s[k].Sub(s[k-1]), backoff<<(k-1); gap <= 0 || gap > bound {
					t.Errorf("domain %d: retry %d after %v, want (0, %v]", i, k, gap, bound)
				}
			}
			firsts[s[1].Sub(s[0])] = true
		}
		if len(firsts) < domainsN/2 {
			t.Errorf("%d distinct first waits for %d domains: no jitter", len(firsts), domainsN)
		}
	})
}

// TestBackoffCap: no wait exceeds MaxBackoff, however many retries.
func TestBackoffCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var stamps []time.Time
		job := func(_ context.Context, name dnsname.Name) (any, error) {
			stamps = append(stamps, time.Now())
			return planOf(name, route.ResultError), &resolve.Error{Rcode: 2, Err: resolve.ErrServerFailure}
		}
		if _, err := Run(t.Context(), Lines(strings.NewReader("a.example\n")), io.Discard, Config{Job: job, Retries: 12, Backoff: time.Second}); err != nil {
			t.Fatal(err)
		}
		for k := 1; k < len(stamps); k++ {
			if gap := stamps[k].Sub(stamps[k-1]); gap > MaxBackoff {
				t.Errorf("retry %d after %v, cap %v", k, gap, MaxBackoff)
			}
		}
		if len(stamps) != 13 {
			t.Errorf("%d attempts, want 13", len(stamps))
		}
	})
}

// TestInterrupt: cancelling the run stops the input, writes every entry
// finished before the first unfinished one, and leaves a file of whole
// lines that --resume completes to exactly what an uninterrupted run
// writes.
func TestInterrupt(t *testing.T) {
	const n = 2000
	in := list(n)
	full := runToString(t, in, Config{Job: instant})

	for _, tt := range []struct{ unordered, prefetch, cached bool }{{false, false, false}, {true, false, false}, {false, true, false}, {true, true, false}, {false, true, true}, {true, true, true}} {
		unordered := tt.unordered
		t.Run(fmt.Sprintf("unordered=%v,prefetch=%v,cached=%v", unordered, tt.prefetch, tt.cached), func(t *testing.T) {
			// With a prefetch, a domain waits for it (done called later,
			// from another goroutine, as a socket's reader calls it)
			// before its job runs; some prefetches end after the
			// interruption.
			var prefetch func(dnsname.Name, func())
			if tt.prefetch {
				prefetch = func(_ dnsname.Name, done func()) {
					time.AfterFunc(time.Duration(rand.N(1000))*time.Microsecond, done)
				}
			}
			path := filepath.Join(t.TempDir(), "out.jsonl")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			var started atomic.Int64
			job := func(ctx context.Context, name dnsname.Name) (any, error) {
				if started.Add(1) == 700 {
					cancel() // Ctrl-C
				}
				if rand.N(4) == 0 {
					// In flight when the interruption comes: cut short.
					select {
					case <-ctx.Done():
						return planOf(name, route.ResultError), &resolve.Error{Rcode: -1, Err: fmt.Errorf("%w: %w", resolve.ErrTimeout, ctx.Err())}
					case <-time.After(time.Duration(rand.N(2000)) * time.Microsecond):
					}
				}
				return planOf(name, route.ResultOK), nil
			}
			// With Cached, two domains of three end where their
			// prefetch does, some after the interruption, while the
			// writer is closing.
			var cached CachedJob
			if tt.cached {
				cached = func(name dnsname.Name) (any, error, bool) {
					if started.Add(1) == 700 {
						cancel()
					}
					return planOf(name, route.ResultOK), nil, rand.N(3) != 0
				}
			}
			sum, err := Run(ctx, Lines(strings.NewReader(in)), f, Config{Job: job, Prefetch: prefetch, Cached: cached, Concurrency: 64, Unordered: unordered})
			f.Close()
			if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) || !sum.Interrupted {
				t.Fatalf("error %v, interrupted %v; want ErrInterrupted", err, sum.Interrupted)
			}
			b, _ := os.ReadFile(path)
			got := domains(t, string(b))
			if len(got) == 0 || len(got) >= n || int64(len(got)) != sum.Written {
				t.Fatalf("%d lines written (summary %d) of %d", len(got), sum.Written, n)
			}
			if !unordered && !slices.Equal(got, names(n)[:len(got)]) {
				t.Fatal("the interrupted output is not a prefix of the input")
			}
			if slices.ContainsFunc(strings.Split(string(b), "\n"), func(l string) bool { return strings.Contains(l, `"error"`) }) {
				t.Error("an entry cut short by the interruption was written")
			}

			t.Logf("interrupted after %d of %d lines", sum.Written, n)

			// Resume.
			f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			done, err := Resume(f, FormatJSON, unordered)
			if err != nil {
				t.Fatal(err)
			}
			sum2, err := Run(t.Context(), Lines(strings.NewReader(in)), f, Config{Job: instant, Prefetch: prefetch, Done: done, Unordered: unordered})
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			if sum2.Resumed != sum.Written || sum2.Written != n-sum.Written {
				t.Errorf("resumed %d and wrote %d; want %d and %d", sum2.Resumed, sum2.Written, sum.Written, n-sum.Written)
			}
			b, _ = os.ReadFile(path)
			if !unordered {
				if stable(string(b)) != stable(full) {
					t.Error("interrupted and resumed output differs from an uninterrupted run")
				}
				return
			}
			got, want := domains(t, string(b)), names(n)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("resumed unordered output: %d lines, not each entry once", len(got))
			}
		})
	}
}

// TestInterruptBeforeStart: a run cancelled before it starts writes
// nothing and says it was interrupted.
func TestInterruptBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out bytes.Buffer
	sum, err := Run(ctx, Lines(strings.NewReader(list(10))), &out, Config{Job: instant})
	if !errors.Is(err, ErrInterrupted) || !sum.Interrupted || out.Len() != 0 {
		t.Errorf("error %v, interrupted %v, output %q", err, sum.Interrupted, out.String())
	}
}

// TestInterruptBlockedInput: Ctrl-C while the input blocks (standard
// input with nothing coming) ends the run at once.
func TestInterruptBlockedInput(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("a.example\nb.example\n")) // then nothing, never EOF
	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Lines(pr), &out, Config{Job: instant})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInterrupted) {
			t.Errorf("error %v, want ErrInterrupted", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the interruption")
	}
	if got := domains(t, out.String()); !slices.Equal(got, []string{"a.example", "b.example"}) {
		t.Errorf("wrote %q", got)
	}
}

var elapsedRE = regexp.MustCompile(`"elapsed_ms":\d+`)

func stable(s string) string { return elapsedRE.ReplaceAllString(s, `"elapsed_ms":0`) }

func runToString(t *testing.T, in string, cfg Config) string {
	t.Helper()
	var out bytes.Buffer
	if _, err := Run(t.Context(), Lines(strings.NewReader(in)), &out, cfg); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// failingWriter fails after n bytes.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errors.New("no space left on device")
	}
	w.n -= len(p)
	return len(p), nil
}

// TestWriteError: an output that fails stops the run with the error, and
// does not hang the workers.
func TestWriteError(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		_, err := Run(t.Context(), Lines(strings.NewReader(list(200000))), &failingWriter{n: 1 << 20}, Config{Job: instant, Concurrency: 8})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no space left") {
			t.Errorf("error %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run hung after a write error")
	}
}

// TestInputError: an input that fails after some entries ends the run
// with its error, after writing the entries read before it.
func TestInputError(t *testing.T) {
	boom := errors.New("read error")
	src := func(yield func(Item, error) bool) {
		for i := range 10 {
			if !yield(item(int64(i+1), fmt.Sprintf("d%d.example", i)), nil) {
				return
			}
		}
		yield(Item{}, boom)
	}
	var out bytes.Buffer
	sum, err := Run(t.Context(), src, &out, Config{Job: instant})
	if !errors.Is(err, boom) || errors.Is(err, ErrInterrupted) {
		t.Errorf("error %v, want %v", err, boom)
	}
	if got := domains(t, out.String()); !slices.Equal(got, names(10)) || sum.Written != 10 {
		t.Errorf("wrote %q", got)
	}
}

func TestShardRun(t *testing.T) {
	in := list(500)
	var all []string
	for i := range 3 {
		out := runToString(t, in, Config{Job: instant, Shard: Shard{i, 3}})
		ds := domains(t, out)
		// Each shard keeps input order.
		if !slices.IsSortedFunc(ds, func(a, b string) int {
			var x, y int
			fmt.Sscanf(a, "d%d", &x)
			fmt.Sscanf(b, "d%d", &y)
			return x - y
		}) {
			t.Errorf("shard %d out of order", i)
		}
		all = append(all, ds...)
	}
	want := names(500)
	slices.Sort(all)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Errorf("the shards hold %d lines together, want each of %d once", len(all), len(want))
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := Run(t.Context(), Lines(strings.NewReader("a.example\n")), io.Discard, Config{}); err == nil {
		t.Error("Run without a Job accepted")
	}
}

// TestConcurrencyBounded: a Concurrency or Window above MaxConcurrency
// or MaxWindow is cut to it, so the run costs what one at the bounds
// does: the workers and the window's buffers are made up front, and
// --concurrency 100000000 asked for 28 GB at once and crashed.
func TestConcurrencyBounded(t *testing.T) {
	alloc := func(cfg Config) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		cfg.Job = instant
		if _, err := Run(t.Context(), Lines(strings.NewReader(list(3))), io.Discard, cfg); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	atBounds := alloc(Config{Concurrency: MaxConcurrency, Window: MaxWindow})
	above := alloc(Config{Concurrency: 4 * MaxConcurrency, Window: 4 * MaxWindow})
	if above > atBounds*3/2 {
		t.Errorf("%d MB allocated above the bounds, %d MB at them", above>>20, atBounds>>20)
	}
}

// TestCached: with Cached, a domain whose prefetch ended is finished on the
// goroutine that ended it, and goes to a worker (the Job) only when Cached
// lacks an answer or its outcome is a temporary failure, which the Job
// then retries. Every entry is written once, in input order, with the
// outcome of whichever ran last.
func TestCached(t *testing.T) {
	const n = 3000
	in := list(n) + "not a domain\n"
	var jobs, cachedCalls atomic.Int64
	job := func(_ context.Context, name dnsname.Name) (any, error) {
		jobs.Add(1)
		return planOf(name, route.ResultNoMail), nil
	}
	index := func(name dnsname.Name) int {
		i, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name.String(), "d"), ".example"))
		return i
	}
	cached := func(name dnsname.Name) (any, error, bool) {
		cachedCalls.Add(1)
		switch index(name) % 3 {
		case 1: // an answer was not in memory
			return nil, nil, false
		case 2: // a temporary failure: the Job tries again
			return planOf(name, route.ResultError), &resolve.Error{Rcode: dns.RcodeServerFailure, Err: resolve.ErrServerFailure}, true
		}
		return planOf(name, route.ResultOK), nil, true
	}
	prefetch := func(_ dnsname.Name, done func()) {
		time.AfterFunc(time.Duration(rand.N(500))*time.Microsecond, done)
	}
	var out bytes.Buffer
	sum, err := Run(t.Context(), Lines(strings.NewReader(in)), &out, Config{Job: job, Prefetch: prefetch, Cached: cached, Concurrency: 32})
	if err != nil {
		t.Fatal(err)
	}
	got := domains(t, out.String())
	if want := append(names(n), "not a domain"); !slices.Equal(got, want) {
		t.Fatalf("%d lines, not one per entry in input order: last %q", len(got), got[len(got)-1])
	}
	for i, l := range slices.Collect(strings.Lines(out.String()))[:n] {
		want := `"result":"ok"`
		if i%3 != 0 {
			want = `"result":"no-mail"`
		}
		if !strings.Contains(l, want) {
			t.Fatalf("line %d: %s, want %s", i+1, l, want)
		}
	}
	if cachedCalls.Load() != n || jobs.Load() != n-(n+2)/3 {
		t.Errorf("Cached ran %d times, the Job %d; want %d and %d", cachedCalls.Load(), jobs.Load(), n, n-(n+2)/3)
	}
	if sum.Written != n+1 || sum.Errors[KindInvalidInput] != 1 {
		t.Errorf("summary: %d written, %d invalid", sum.Written, sum.Errors[KindInvalidInput])
	}
}
