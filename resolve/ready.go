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

// Async is a Resolver that can also start a lookup without waiting for it.
// A bulk caller (a scan) uses it to keep thousands of questions in flight
// without a goroutine blocked on each one.
type Async interface {
	Resolver
	// LookupAsync starts a lookup of q and returns at once. done is
	// called exactly once with what Lookup would have returned; it may be
	// called before LookupAsync returns, or on another goroutine (a
	// socket's reader), so it must not block: it may start more lookups.
	LookupAsync(q Question, done func(*Answer, error))
}

// AsyncOf returns r as an Async when its lookups can really start without
// a goroutine waiting: an Async transport (a resolve/mux.Mux), or a Cache
// in front of one. Anything else (a stub, zone files) reports false, and
// callers simply call Lookup.
func AsyncOf(r Resolver) (Async, bool) {
	switch v := r.(type) {
	case *Cache:
		// A Cache starts lookups of its own only as well as the
		// resolver behind it does.
		if _, ok := AsyncOf(v.next); ok {
			return v, true
		}
		return nil, false
	case Async:
		return v, true
	}
	return nil, false
}
