package serve

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// palettes reads the colour custom properties of style.css: the light
// ones of the first :root block, and the dark ones of the :root block in
// the prefers-color-scheme: dark media query.
func palettes(t *testing.T) (light, dark map[string]string) {
	t.Helper()
	b, err := staticFS.ReadFile("web/static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	css := string(b)
	prop := regexp.MustCompile(`--([a-z0-9-]+):\s*(#[0-9a-fA-F]{6})\s*;`)
	read := func(block string) map[string]string {
		m := map[string]string{}
		for _, p := range prop.FindAllStringSubmatch(block, -1) {
			m[p[1]] = p[2]
		}
		return m
	}
	i := strings.Index(css, "@media (prefers-color-scheme: dark)")
	if i < 0 {
		t.Fatal("style.css has no dark scheme")
	}
	light, dark = read(css[:i]), read(css[i:])
	if len(light) < 10 || len(dark) != len(light) {
		t.Fatalf("the palettes differ: %d light colours, %d dark", len(light), len(dark))
	}
	return light, dark
}

// luminance is a colour's relative luminance (WCAG 2.2, "relative
// luminance").
func luminance(t *testing.T, hex string) float64 {
	t.Helper()
	v, err := strconv.ParseUint(hex[1:], 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	ch := func(c uint64) float64 {
		s := float64(c) / 255
		if s <= 0.04045 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(v>>16&0xff) + 0.7152*ch(v>>8&0xff) + 0.0722*ch(v&0xff)
}

// contrast is the WCAG contrast ratio of two colours.
func contrast(t *testing.T, a, b string) float64 {
	la, lb := luminance(t, a), luminance(t, b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

// TestContrast: every text colour the style sheet sets reaches 4.5:1 on
// every background it is set on (WCAG 2.2 SC 1.4.3, level AA), and the
// focus ring and the input's border 3:1 (SC 1.4.11), in light and dark.
func TestContrast(t *testing.T) {
	light, dark := palettes(t)
	type pair struct {
		fg, bg string
		min    float64
	}
	var pairs []pair
	text := func(fgs, bgs string) {
		for fg := range strings.FieldsSeq(fgs) {
			for bg := range strings.FieldsSeq(bgs) {
				pairs = append(pairs, pair{fg, bg, 4.5})
			}
		}
	}
	// Body text, links, notes and severities on the page, cards and code.
	text("fg muted link err warn ok info", "bg surface")
	text("fg", "surface-2")
	// Status colours on their own tints, and the verdict's counts on
	// every verdict tint.
	text("ok warn err info fg", "ok-bg warn-bg err-bg info-bg off-bg")
	text("off", "off-bg")
	// The button: the background colour on the link colour.
	text("bg", "link")
	pairs = append(pairs, pair{"focus", "bg", 3}, pair{"focus", "surface", 3}, pair{"muted", "bg", 3})

	for scheme, pal := range map[string]map[string]string{"light": light, "dark": dark} {
		for _, p := range pairs {
			fg, bg := pal[p.fg], pal[p.bg]
			if fg == "" || bg == "" {
				t.Fatalf("%s: no --%s or --%s", scheme, p.fg, p.bg)
			}
			if r := contrast(t, fg, bg); r < p.min {
				t.Errorf("%s: --%s %s on --%s %s: %.2f:1, want %.1f:1", scheme, p.fg, fg, p.bg, bg, r, p.min)
			}
		}
	}
}

func TestContrastFormula(t *testing.T) {
	// The extremes and a known pair: #767676 on white is 4.54:1.
	for _, c := range []struct {
		a, b string
		want float64
	}{{"#000000", "#ffffff", 21}, {"#ffffff", "#ffffff", 1}, {"#767676", "#ffffff", 4.54}} {
		if got := contrast(t, c.a, c.b); fmt.Sprintf("%.2f", got) != fmt.Sprintf("%.2f", c.want) {
			t.Errorf("contrast(%s, %s) = %.2f, want %.2f", c.a, c.b, got, c.want)
		}
	}
}
