package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/finding"
	"github.com/mxtrace/mxtrace/probe"
	"github.com/mxtrace/mxtrace/report"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
)

// Exit statuses, the same for every command (README "Exit status").
const (
	exitOK       = 0 // the job was done, and nothing reached --fail-on
	exitFindings = 1 // the job was done, and a finding reached --fail-on
	exitUsage    = 2 // bad usage or input: nothing was asked
	exitFailed   = 3 // the job could not be done: no usable answer
)

// exitError carries an exit status out of a cobra command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

// errFindings is the (unprinted) error behind exit status 1.
var errFindings = errors.New("findings at or above --fail-on")

// exitStatus maps how a command ended to the status the process exits
// with. Commands end with nil, with verdict's error, or with an
// *exitError saying what went wrong before the job started (2) or what
// stopped it (3); anything else comes from cobra itself (an unknown
// command, a wrong number of arguments) and is bad usage.
func exitStatus(err error) int {
	if err == nil {
		return exitOK
	}
	if ee, ok := errors.AsType[*exitError](err); ok {
		return ee.code
	}
	return exitUsage
}

// verdict is the one rule from a command's outcome to its exit status:
// failed (the first error for which jobFailed holds, nil when there was
// none) means the job could not be done, 3, whatever was found; else the
// worst finding against --fail-on decides between 1 and 0.
func (g *globals) verdict(failed error, worst finding.Severity) error {
	if failed != nil {
		return &exitError{exitFailed, failed}
	}
	if failOn, _ := g.failSeverity(); failOn != 0 && worst >= failOn {
		return &exitError{exitFindings, errFindings}
	}
	return nil
}

// jobFailed reports whether err means that the job could not be done: no
// usable answer came back for what the job depends on (for route, the
// domain's MX records). That is every lookup that did not settle its
// question (*resolve.Error: a time-out, SERVFAIL, REFUSED, another rcode,
// a malformed or truncated reply, an unreachable server, a name outside
// the --zone files), a planner's temporary failure, no address to talk
// to, and the deadline. Whichever server or path it came through, the
// same failure gives the same status.
func jobFailed(err error) bool {
	if err == nil || brokenForGood(err) {
		return false
	}
	if _, ok := errors.AsType[*resolve.Error](err); ok {
		return true
	}
	for _, target := range []error{route.ErrTemporary, resolve.ErrNoServers, probe.ErrNoAddress, context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// brokenForGood reports an error that is an answer, not a failure to get
// one: the domain's DNS answered but is broken for good (an alias chain
// that loops or runs too long), or --self leaves no exchange. Those are
// findings: status 1 at --fail-on error, not 3.
func brokenForGood(err error) bool {
	return errors.Is(err, resolve.ErrCNAMELoop) || errors.Is(err, resolve.ErrCNAMEChain) || errors.Is(err, route.ErrMailLoop)
}

// auditFailed is check's job failure: the first area that could not be
// judged (check.Judge gives an area an error only for a failure to get
// its facts: a lookup that did not settle, the deadline), unless the
// error is an answer broken for good. An audit that could not check an
// area was not done, whichever area it is: exit 0 must mean that every
// area was checked.
func auditFailed(r *check.Report) error {
	for _, err := range r.Errors() {
		if !brokenForGood(err) {
			return err
		}
	}
	return nil
}

// errorLine is the line a person reads on standard error when a command
// ends with err: one sentence saying what failed, for which name, why and
// what to do. The innermost lookup error (*resolve.Error) names the
// question, the server and what it did; the context each layer added on
// the way up ("route d.test: temporary DNS failure: ", "DNS lookup
// failed: ") only repeats it, and is left out here, as are the Go package
// prefixes (report.Plain). The error itself, and the JSON, keep them all.
func errorLine(err error) string {
	text := err.Error()
	if e, ok := errors.AsType[*resolve.Error](err); ok && strings.HasSuffix(text, e.Error()) {
		text = e.Error()
		if ae, ok := errors.AsType[*check.AreaError](err); ok {
			text = "could not check " + string(ae.Area) + ": " + text
		}
	}
	text = report.Plain(text)
	if hint := whatToDo(err); hint != "" {
		text += "; " + hint
	}
	return text
}

// whatToDo is the advice for a lookup that failed, or "".
func whatToDo(err error) string {
	e, ok := errors.AsType[*resolve.Error](err)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "allow more time with --timeout"
	case !ok:
		return ""
	case errors.Is(err, resolve.ErrNotInZone):
		return "add its zone with --zone, or look names outside the files up on the network with --resolver"
	case e.Server == "":
		return ""
	case errors.Is(err, resolve.ErrTimeout) || errors.Is(err, resolve.ErrUnreachable):
		return "check that a DNS server answers at " + e.Server + ", or name another with --resolver"
	case errors.Is(err, resolve.ErrRefused):
		return "name a resolver that answers for any domain with --resolver"
	case errors.Is(err, resolve.ErrServerFailure):
		return "the domain's DNS servers did not answer the resolver, or its DNSSEC does not validate: try again later, and check the domain's nameservers"
	case errors.Is(err, resolve.ErrBadResponse):
		return "the server, or something on the way, mangles DNS: try another with --resolver"
	}
	return ""
}
