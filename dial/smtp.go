package dial

import "time"

// SMTPPort is the port exchanges receive mail from other servers on
// (RFC 5321 §4.5.4.2 via the IANA registry), and the one whose TLSA
// records a DANE sender looks up (RFC 7672 §2.2.3: "_25._tcp").
const SMTPPort = 25

// The time-outs RFC 5321 §4.5.3.2 asks an SMTP client to allow, per stage.
const (
	GreetingTimeout     = 5 * time.Minute  // §4.5.3.2.1 Initial 220 Message
	MailTimeout         = 5 * time.Minute  // §4.5.3.2.2 MAIL Command, and §4.5.3.2.3 RCPT Command: the same
	DataInitTimeout     = 2 * time.Minute  // §4.5.3.2.4 DATA Initiation
	DataBlockTimeout    = 3 * time.Minute  // §4.5.3.2.5 Data Block
	DataTermTimeout     = 10 * time.Minute // §4.5.3.2.6 DATA Termination
	TLSHandshakeTimeout = 5 * time.Minute  // RFC 3207 sets none; as for a command
)

// QuitTimeout bounds the wait for the reply to QUIT, which RFC 5321
// §4.5.3.2 gives no time-out of its own: by then the session has done what
// it came for, and the reply changes nothing (§4.1.1.10).
const QuitTimeout = 5 * time.Second

// SMTPTimeouts bound one SMTP session: Session the whole of it, each other
// field one stage inside it (a stage ends at its own time-out or at the
// session's, whichever comes first). The stages are those of RFC 5321
// §4.5.3.2; Command covers the commands it does not name (EHLO, STARTTLS,
// RSET, QUIT) as well as MAIL and RCPT. A read that a deadline cuts short
// is a time-out of its stage, never a reply.
type SMTPTimeouts struct {
	// Session bounds the session from the connection on. Zero: only the
	// stages (and the caller's context) bound it.
	Session time.Duration
	// Connect bounds the TCP connection.
	Connect time.Duration
	// Greeting bounds the wait for the complete 220 greeting
	// (§4.5.3.2.1).
	Greeting time.Duration
	// Command bounds the wait for the reply to each command: EHLO,
	// STARTTLS, MAIL (§4.5.3.2.2), RCPT (§4.5.3.2.3), RSET, QUIT.
	Command time.Duration
	// TLSHandshake bounds the TLS handshake after STARTTLS.
	TLSHandshake time.Duration
	// DataInit bounds the wait for the 354 reply to DATA (§4.5.3.2.4).
	DataInit time.Duration
	// DataBlock bounds sending the message data (§4.5.3.2.5).
	DataBlock time.Duration
	// DataTerm bounds the wait for the reply to the final dot
	// (§4.5.3.2.6).
	DataTerm time.Duration
}

// RFC5321Timeouts are the time-outs of RFC 5321 §4.5.3.2, with a 30-second
// connection time-out as deployed senders use and no session bound: what
// a sender that queues mail waits.
func RFC5321Timeouts() SMTPTimeouts {
	return SMTPTimeouts{
		Connect:      DefaultConnectTimeout,
		Greeting:     GreetingTimeout,
		Command:      MailTimeout,
		TLSHandshake: TLSHandshakeTimeout,
		DataInit:     DataInitTimeout,
		DataBlock:    DataBlockTimeout,
		DataTerm:     DataTermTimeout,
	}
}

// Or fills the zero (or negative) fields of t from def.
func (t SMTPTimeouts) Or(def SMTPTimeouts) SMTPTimeouts {
	or := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	or(&t.Session, def.Session)
	or(&t.Connect, def.Connect)
	or(&t.Greeting, def.Greeting)
	or(&t.Command, def.Command)
	or(&t.TLSHandshake, def.TLSHandshake)
	or(&t.DataInit, def.DataInit)
	or(&t.DataBlock, def.DataBlock)
	or(&t.DataTerm, def.DataTerm)
	return t
}
