package serve

import (
	"bytes"
	"net/http"
)

// startStream answers 200 with the headers of a server-sent events stream
// (HTML Living Standard §9.2) and flushes them, so the client knows at
// once that the stream is open; the returned controller flushes each
// event after it.
func startStream(w http.ResponseWriter) *http.ResponseController {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	return rc
}

// appendEvent appends one event named name with data: each line of data
// is a "data:" line, which the client joins again with line feeds; empty
// data is one bare "data:" line, so the event is still dispatched.
func appendEvent(b []byte, name string, data []byte) []byte {
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, '\n')
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'})
		b = append(b, "data:"...)
		if line = bytes.TrimSuffix(line, []byte{'\r'}); len(line) > 0 {
			b = append(b, ' ')
			b = append(b, line...)
		}
		b = append(b, '\n')
		if !more || len(rest) == 0 {
			break
		}
		data = rest
	}
	return append(b, '\n')
}
