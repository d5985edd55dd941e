package peers

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// WaitLog waits until Postfix's log holds every one of want, and returns
// the log. Postfix writes its log through postlogd, after the session it
// tells of: a client that has read QUIT's reply can look before the
// disconnect line is there. When ctx ends first it returns the log as it
// is and an error naming what is missing.
func (p *Postfix) WaitLog(ctx context.Context, want ...string) (string, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		log := p.Log()
		missing := ""
		for _, w := range want {
			if !strings.Contains(log, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return log, nil
		}
		select {
		case <-ctx.Done():
			return log, fmt.Errorf("peers: postfix's log has no %q: %w", missing, ctx.Err())
		case <-tick.C:
		}
	}
}
