package scan

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progressInterval is how often the progress line is redrawn.
const progressInterval = 250 * time.Millisecond

// progress draws one status line ("\r" and erase-to-end-of-line) on a
// terminal: done/total when the total is known, the rate, the time left
// and the errors. The pipeline only adds to atomic counters; the line is
// drawn by its own goroutine on a ticker, so the cost per domain is an
// atomic add, whatever the rate.
type progress struct {
	w      io.Writer
	total  atomic.Int64 // -1 until known
	done   atomic.Int64 // written + skipped by --resume
	errors atomic.Int64

	start    time.Time
	lastT    time.Time
	lastDone int64
	rate     float64 // domains/s, smoothed

	stop   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startProgress(ctx context.Context, w io.Writer, total func(context.Context) (int64, error)) *progress {
	p := &progress{w: w, start: time.Now(), stop: make(chan struct{})}
	p.lastT = p.start
	p.total.Store(-1)
	ctx, p.cancel = context.WithCancel(ctx)
	if total != nil {
		// Counting reads the input a second time: in the background, and
		// the line shows no total until it is known.
		p.wg.Go(func() {
			if n, err := total(ctx); err == nil {
				p.total.Store(n)
			}
		})
	}
	p.wg.Go(func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				p.draw(now)
			case <-p.stop:
				return
			}
		}
	})
	return p
}

// end draws the last line and moves to the next.
func (p *progress) end() {
	close(p.stop)
	p.cancel()
	p.wg.Wait()
	p.draw(time.Now())
	fmt.Fprint(p.w, "\n")
}

func (p *progress) draw(now time.Time) {
	done, total, errs := p.done.Load(), p.total.Load(), p.errors.Load()
	if dt := now.Sub(p.lastT).Seconds(); dt > 0 {
		inst := float64(done-p.lastDone) / dt
		if p.rate == 0 {
			p.rate = inst
		} else {
			// An exponential average over about two seconds.
			p.rate += (inst - p.rate) * min(1, dt/2)
		}
		p.lastT, p.lastDone = now, done
	}
	fmt.Fprint(p.w, p.line(done, total, errs, p.rate, now.Sub(p.start)))
}

// line formats the status line.
func (p *progress) line(done, total, errs int64, rate float64, elapsed time.Duration) string {
	s := fmt.Sprintf("\r%d", done)
	if total >= 0 {
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(min(done, total)) / float64(total)
		}
		s += fmt.Sprintf("/%d %3.0f%%", total, pct)
	}
	s += fmt.Sprintf("  %.0f domains/s  %s", rate, elapsed.Round(time.Second))
	if total >= 0 && rate > 0 && done < total {
		eta := time.Duration(float64(total-done) / rate * float64(time.Second))
		s += "  ETA " + eta.Round(time.Second).String()
	}
	s += fmt.Sprintf("  errors %d\x1b[K", errs)
	return s
}
