//go:build race

package route_test

// raceEnabled: the race detector's instrumentation allocates, so the
// allocation bounds are not checked under it.
const raceEnabled = true
