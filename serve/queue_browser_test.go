package serve

import (
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestBrowserQueue: the queue page in headless Chromium, within the CSP,
// at a desktop width and at a phone's: nothing scrolls sideways, the held
// message is marked, and each cell keeps its label on the narrow screen.
func TestBrowserQueue(t *testing.T) {
	site := startSite(t, queueServer(t, &fakeQueue{entries: queueEntries(time.Now())}), nil)
	b := browser(t)
	for _, width := range []int64{1100, 380} {
		ctx, seen := tab(t, b)
		if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: width, Height: 900, DeviceScaleFactor: 1}); err != nil {
			t.Fatal(err)
		}
		do(t, ctx, "queue", chromedp.Navigate(site.url+"/queue"), chromedp.WaitVisible(chromedp.CSS("table.q-table")))
		if over := eval[int](t, ctx, "document.documentElement.scrollWidth - window.innerWidth"); over > 0 {
			t.Errorf("at %d pixels the page scrolls %d pixels sideways", width, over)
		}
		if n := eval[int](t, ctx, "document.querySelectorAll('tr.q-held .status.s-warning').length"); n != 1 {
			t.Errorf("at %d pixels, %d held badges, want 1", width, n)
		}
		label := eval[string](t, ctx, "getComputedStyle(document.querySelector('td.q-from'), '::before').content")
		name := "queue-wide"
		if width < 576 { // 36rem, the style sheet's narrow screens
			name = "queue-narrow"
		}
		if (name == "queue-narrow") != (label == `"From: "`) {
			t.Errorf("at %d pixels the From cell's label is %s", width, label)
		}
		screenshot(t, ctx, name)
		clean(t, seen)
	}
}
