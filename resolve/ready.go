package resolve

// Ready is implemented by resolvers that can tell, without asking anyone,
// that a lookup would be answered at once from memory (a Cache holding a
// fresh answer).
type Ready interface {
	Ready(q Question) bool
}

// IsReady reports whether r says a lookup of q would be answered at once.
// Callers that overlap lookups in goroutines run the ready ones inline
// instead: a scan looks up the same provider's exchanges for thousands of
// domains, and a goroutine per cached answer costs more than the answer.
// A false result only means the lookup may wait.
func IsReady(r Resolver, q Question) bool {
	rr, ok := r.(Ready)
	return ok && rr.Ready(q)
}
