package send

import (
	"strings"
)

// maxQueueID bounds the length of a queue identifier taken from a reply.
const maxQueueID = 64

// QueueID extracts the queue identifier a server gave in its reply to the
// end of the message data (RFC 5321 §4.2: the text of a reply is free; this
// knows the common forms), or "" when the text has none:
//
//	250 2.0.0 Ok: queued as 4Xyz12AbCd          (Postfix)
//	250 OK id=1tAbCd-000Xyz-9Q                  (Exim)
//	250 2.0.0 5A1B2C3D4E Message accepted for delivery  (Sendmail)
//
// text is the reply without its code, as go-smtp returns it (the enhanced
// status code, RFC 3463, may lead).
func QueueID(text string) string {
	if len(text) > 4096 {
		text = text[:4096]
	}
	fields := strings.Fields(text)
	for i, f := range fields {
		lower := strings.ToLower(f)
		switch {
		// Postfix: "queued as ID".
		case lower == "as" && i > 0 && strings.EqualFold(fields[i-1], "queued") && i+1 < len(fields):
			return clean(fields[i+1])
		// Exim: "id=ID".
		case strings.HasPrefix(lower, "id=") && len(f) > 3:
			return clean(f[3:])
		}
	}
	// Sendmail: "2.0.0 ID Message accepted for delivery".
	for i, f := range fields {
		if strings.EqualFold(f, "message") && i+1 < len(fields) && strings.EqualFold(fields[i+1], "accepted") && i > 0 {
			if id := clean(fields[i-1]); id != "" && !isEnhanced(id) {
				return id
			}
		}
	}
	return ""
}

// clean trims the punctuation servers put around an identifier and rejects
// what cannot be one.
func clean(s string) string {
	s = strings.Trim(s, "<>()[],;.:\"'")
	if s == "" || len(s) > maxQueueID {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return ""
		}
	}
	return s
}

// isEnhanced reports whether s looks like an enhanced status code (RFC 3463
// §2: class.subject.detail).
func isEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}
