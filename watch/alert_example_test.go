package watch_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/mxtrace/mxtrace/watch"
)

// A webhook receiver checks each request with Verify before it trusts the
// body, and drops an alert ID it has seen (delivery is at least once).
func ExampleVerify() {
	secret := []byte("the shared secret")
	seen := map[string]bool{}
	receive := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read failed", http.StatusBadRequest)
			return
		}
		if err := watch.Verify(secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, "not signed", http.StatusUnauthorized)
			return
		}
		if id := r.Header.Get(watch.HeaderAlertID); !seen[id] {
			seen[id] = true
			fmt.Println("alert", id, strings.TrimSpace(string(body)))
		}
		w.WriteHeader(http.StatusNoContent)
	}

	// What mxtrace sends, twice (as after a crash between the send and
	// its mark), and a forgery.
	now := time.Now()
	body := []byte(`{"schema":1,"id":7,"kind":"change","domain":"example.org"}`)
	for _, key := range [][]byte{secret, secret, []byte("a guess")} {
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(string(body)))
		req.Header.Set(watch.HeaderTimestamp, fmt.Sprint(now.Unix()))
		req.Header.Set(watch.HeaderSignature, watch.Sign(key, now, body))
		req.Header.Set(watch.HeaderAlertID, "7")
		rec := httptest.NewRecorder()
		receive(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// alert 7 {"schema":1,"id":7,"kind":"change","domain":"example.org"}
	// 204
	// 204
	// 401
}
