package relay

import (
	"bytes"
	"strings"
)

// dropOwnResults removes, in place, every Authentication-Results field of
// msg's header that names authservID as its author, and returns the
// shortened message and how many it removed. RFC 8601 §5: a border MTA
// must remove such fields arriving from outside before it adds its own,
// or the next hop (the primary, which trusts this relay's results) would
// believe a sender's forged "dmarc=pass". Only the header section (up to
// the first empty line) is looked at; fields keep their order and
// folding. Line ends are CRLF or LF, as the message has them.
func dropOwnResults(msg []byte, authservID string) ([]byte, int) {
	w, r, dropped := 0, 0, 0
	for r < len(msg) {
		end := fieldEnd(msg, r)
		if end == r {
			break // the empty line: the body starts
		}
		if isOwnResults(msg[r:end], authservID) {
			dropped++
		} else {
			w += copy(msg[w:], msg[r:end])
		}
		r = end
	}
	if dropped == 0 {
		return msg, 0
	}
	w += copy(msg[w:], msg[r:])
	return msg[:w], dropped
}

// fieldEnd returns where the header field starting at i ends (after its
// last line's line end, continuation lines included), or i itself at the
// empty line that ends the header section.
func fieldEnd(msg []byte, i int) int {
	if bytes.HasPrefix(msg[i:], []byte("\r\n")) || bytes.HasPrefix(msg[i:], []byte("\n")) {
		return i
	}
	j := i
	for {
		nl := bytes.IndexByte(msg[j:], '\n')
		if nl < 0 {
			return len(msg)
		}
		j += nl + 1
		// RFC 5322 §2.2.3: a line starting with white space continues the field.
		if j >= len(msg) || (msg[j] != ' ' && msg[j] != '\t') {
			return j
		}
	}
}

// isOwnResults reports whether field is an Authentication-Results field
// whose authserv-id (RFC 8601 §2.2: the first value, before ";", after any
// comments and folding white space) is authservID, compared without case.
func isOwnResults(field []byte, authservID string) bool {
	name, value, ok := bytes.Cut(field, []byte(":"))
	if !ok || !strings.EqualFold(strings.TrimRight(string(name), " \t"), "Authentication-Results") {
		return false
	}
	v := skipCFWS(string(value))
	id, _, _ := strings.Cut(v, ";")
	id = strings.Trim(strings.TrimSpace(skipCFWS(id)), "\"")
	if k := strings.IndexAny(id, " \t\r\n("); k >= 0 {
		id = id[:k]
	}
	return id != "" && strings.EqualFold(id, authservID)
}

// skipCFWS drops leading folding white space and comments (RFC 5322
// §3.2.2), nested comments included.
func skipCFWS(s string) string {
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		if !strings.HasPrefix(s, "(") {
			return s
		}
		depth := 0
		i := 0
		for ; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				break
			}
		}
		if i >= len(s) {
			return ""
		}
		s = s[i+1:]
	}
}
