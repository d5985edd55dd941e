package resolve

// Ready is implemented by resolvers that hold answers in memory and can
// hand one out without asking anyone (a Cache holding a fresh answer).
type Ready interface {
	// Cached returns the fresh answer to q held in memory, if there is
	// one. It never asks anyone and never waits.
	Cached(q Question) (*Answer, bool)
}

// CachedAnswer is r's answer to q from memory, if r is Ready and has one.
func CachedAnswer(r Resolver, q Question) (*Answer, bool) {
	rr, ok := r.(Ready)
	if !ok {
		return nil, false
	}
	return rr.Cached(q)
}

// IsReady reports whether r says a lookup of q would be answered at once.
// Callers that overlap lookups in goroutines run the ready ones inline
// instead: a scan looks up the same provider's exchanges for thousands of
// domains, and a goroutine per cached answer costs more than the answer.
// A false result only means the lookup may wait.
func IsReady(r Resolver, q Question) bool {
	_, ok := CachedAnswer(r, q)
	return ok
}
