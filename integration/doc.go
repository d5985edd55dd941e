// Package integration tests mxtrace against the real software its users
// meet, all from Debian and all on loopback:
//
//   - Knot DNS serves the zones of examples/example.zone, a DNSSEC-signed
//     zone and a bogus one; Unbound resolves and validates them (RFC 4035
//     §4.3). Every answer mxtrace's stub resolver gets, and every delivery
//     plan (RFC 5321 §5.1) it computes, is compared with what dig gets from
//     the same servers.
//   - Two Knot servers on one port at 127.0.0.1 and 127.0.0.2 play a
//     zone's nameservers for the nameserver audit (agreeing, disagreeing,
//     lame, unreachable), and check runs whole through the validating
//     Unbound, with MTA-STS policies fetched over HTTPS from a loopback
//     server. Where the two disagree on the MX set and the serial, the
//     audit, check and check's text and JSON output name both servers
//     and what each serves.
//   - Postfix instances receive what `mxtrace send` delivers along the
//     route Knot and Unbound give it: the queue ID mxtrace prints is the one
//     in Postfix's log on the right listener, delivery fails over when the
//     primary is stopped, and spreads over an equal-preference tier.
//   - mxtrace relay is relay.test's backup MX (MX 20, the primary Postfix
//     at 10) in a network namespace the test creates (ip netns add), where
//     Knot answers on port 53 for every program, a sending Postfix follows
//     the MX records, and every server has its own address and port 25:
//     fail-over to the relay, its queue delivered within 5 s of the
//     primary's return, recipients refused at RCPT while the primary is
//     down, the open-relay battery (swaks), and kill -9 in the middle of a
//     burst with the acknowledged set compared to the delivered set.
//
// The servers are started and stopped (by PID) by the tests
// (internal/peers). Without knotd, unbound, dig or postfix the tests are
// skipped, and under CI=true they fail. Run them alone with
//
//	go test ./integration/ -v
//
// TestWatchKnot runs itself again in a network namespace of its own
// (unshare -n, as root), where the watched exchanges have their
// documentation addresses on the loopback interface.
package integration
