package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// busyRetry is the Retry-After of a 503 when every MaxChecks slot is
// taken: the wait for one to free up is unknown, and a second is short
// enough not to strand a client and long enough not to invite a spin.
const busyRetry = time.Second

// acquire takes one of the Config.MaxChecks slots for an expensive job
// (a check, probe, scan, events stream or report page). It never queues:
// when all are taken it answers 503 with Retry-After (RFC 9110 §15.6.4)
// and returns ok false. Otherwise the caller runs its job and then calls
// release once.
//
// The mux applies it to the expensive routes (policyOf), for the whole
// request, so handlers do not call it themselves.
func (s *Server) acquire(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	if s.slots == nil {
		s.metrics.inFlight.Inc()
		return s.metrics.inFlight.Dec, true
	}
	select {
	case s.slots <- struct{}{}:
		s.metrics.inFlight.Inc()
		return func() {
			s.metrics.inFlight.Dec()
			<-s.slots
		}, true
	default:
		s.metrics.saturated.Inc()
		writeProblem(w, r, http.StatusServiceUnavailable,
			fmt.Sprintf("all %d slots for checks are taken; try again shortly", cap(s.slots)), busyRetry)
		return nil, false
	}
}

// limitProblem answers the problem of a limit the server put on the
// request, if err (the error of the handler's work) is one, and reports
// whether it did: 413 (RFC 9110 §15.5.14) when the body went over its cap,
// 504 (RFC 9110 §15.6.5) when the request's deadline passed. When the
// client went away (or the server is closing) there is no one to answer,
// and it reports true having written nothing. Handlers call it first with
// any error of their work, before anything else is written:
//
//	res, err := work(r.Context(), ...)
//	if err != nil {
//		if limitProblem(w, r, err) {
//			return
//		}
//		// the handler's own errors (400, ...)
//	}
func limitProblem(w http.ResponseWriter, r *http.Request, err error) bool {
	if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeProblem(w, r, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the request body is over its limit of %d bytes", tooBig.Limit), 0)
		return true
	}
	switch ctxErr := r.Context().Err(); {
	case errors.Is(ctxErr, context.DeadlineExceeded):
		writeProblem(w, r, http.StatusGatewayTimeout, "the work did not finish within the time allowed per request", 0)
		return true
	case ctxErr != nil:
		return true
	}
	return false
}
