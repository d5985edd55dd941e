package relay

import (
	"testing"

	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/send"
)

// TestStatus: a notification's status is the server's enhanced code when
// its class agrees, and otherwise says what happened: a Null MX
// destination is 5.1.10 (RFC 7505 §4.2), another route failure 5.4.4, no
// answer 4.4.1 (RFC 3463).
func TestStatus(t *testing.T) {
	nullMX := &route.Plan{Result: route.ResultNullMX}
	noMail := &route.Plan{Result: route.ResultNoMail}
	for _, tt := range []struct {
		name  string
		r     send.RecipientResult
		class byte
		plan  *route.Plan
		want  string
	}{
		{"server's code", send.RecipientResult{Code: 550, Enhanced: "5.1.1"}, '5', nil, "5.1.1"},
		{"server's code of another class", send.RecipientResult{Code: 550, Enhanced: "4.2.2"}, '5', nil, "5.0.0"},
		{"null MX", send.RecipientResult{}, '5', nullMX, "5.1.10"},
		{"null MX, but a reply came", send.RecipientResult{Code: 550, Enhanced: "5.7.1"}, '5', nullMX, "5.7.1"},
		{"no mail route", send.RecipientResult{}, '5', noMail, "5.4.4"},
		{"no plan", send.RecipientResult{}, '5', nil, "5.4.4"},
		{"no answer", send.RecipientResult{}, '4', nil, "4.4.1"},
	} {
		if got := status(tt.r, tt.class, tt.plan); got != tt.want {
			t.Errorf("%s: status %q, want %q", tt.name, got, tt.want)
		}
	}
}
