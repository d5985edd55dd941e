// Package integration tests mxtrace against real DNS software: Knot DNS
// serves the zones of examples/example.zone and a DNSSEC-signed zone,
// Unbound resolves and validates them (RFC 4035 §4.3), and every answer
// mxtrace's stub resolver gets, and every delivery plan (RFC 5321 §5.1) it
// computes, is compared with what dig gets from the same servers.
//
// The servers run on loopback and are started and stopped by the tests
// (internal/peers). Without knotd, unbound or dig the tests are skipped,
// and under CI=true they fail. Run them alone with
//
//	go test ./integration/ -v
package integration
