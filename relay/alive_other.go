//go:build !unix

package relay

// processAlive reports every process as alive where it cannot be asked:
// leases are then never released early, only when they end.
func processAlive(int) bool { return true }
