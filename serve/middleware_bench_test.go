package serve

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkMiddleware: a cached GET /api/v1/route/{domain}, by its handler
// alone (bare) and through the whole server handler (guarded: rate limit,
// deadline, security headers, metrics, and the access log to a text
// handler on io.Discard), so the difference is what the guard costs a
// request.
//
//	go test -run x -bench Middleware -benchmem ./serve
func BenchmarkMiddleware(b *testing.B) {
	cfg := testConfig(b)
	cfg.Rate, cfg.Burst, cfg.MaxChecks = 1e9, 1e9, 16
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	bare := http.NewServeMux()
	bare.HandleFunc("GET /api/v1/route/{domain}", s.apiRoute)
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"guarded", s.Handler()}} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/api/v1/route/example.test", nil)
			bc.h.ServeHTTP(httptest.NewRecorder(), req) // fill the cache
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				bc.h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
