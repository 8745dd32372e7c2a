package browsertest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// axeTags are the axe-core rule sets every page is checked against.
const axeTags = `['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']`

// axeRun runs axe-core on the page and returns its violations, trimmed to
// what a report needs. The page's CSP forbids inline script, but
// Runtime.evaluate (how chromedp evaluates) is not subject to it, so axe is
// injected that way and nothing about the page is relaxed.
const axeRun = `axe.run(document, {runOnly: {type: 'tag', values: ` + axeTags + `}, resultTypes: ['violations']})
  .then(r => r.violations.map(v => ({
    id: v.id, impact: v.impact || '', help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target.map(String).join(' '), html: n.html, summary: n.failureSummary || ''}))
  })))`

type axeViolation struct {
	ID      string    `json:"id"`
	Impact  string    `json:"impact"`
	Help    string    `json:"help"`
	HelpURL string    `json:"helpUrl"`
	Nodes   []axeNode `json:"nodes"`
}

type axeNode struct {
	Target  string `json:"target"`
	HTML    string `json:"html"`
	Summary string `json:"summary"`
}

func (v axeViolation) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s (%s): %s <%s>", v.ID, v.Impact, v.Help, v.HelpURL)
	for _, n := range v.Nodes {
		fmt.Fprintf(&sb, "\n\t\t%s  %s", n.Target, n.HTML)
		if n.Summary != "" {
			fmt.Fprintf(&sb, "\n\t\t\t%s", strings.ReplaceAll(n.Summary, "\n", "\n\t\t\t"))
		}
	}
	return sb.String()
}

// checkAxe runs axe-core on the current page: a violation of impact
// "serious" or "critical" (in a tab with strictAxe, of any impact) fails
// the test, the others are logged. A page already audited in this tab
// (same path, heading, error state, language and width) is not audited
// again.
func (b *tab) checkAxe(name string) {
	b.t.Helper()
	key := eval[string](b, "page identity", `[location.pathname, document.querySelector('h1').textContent.trim(),
	  Array.from(document.querySelectorAll('[aria-invalid="true"], [role="alert"]:not([hidden])')).map(e => e.id || e.tagName).join(' '),
	  document.documentElement.lang, window.innerWidth].join('|')`)
	if b.audited[key] {
		return
	}
	b.audited[key] = true
	for _, v := range b.axeViolations() {
		switch {
		case b.strictAxe, v.Impact == "serious", v.Impact == "critical":
			b.t.Errorf("[%s] a11y: page %s (%s): %s", b.journey, name, key, v)
		default:
			b.t.Logf("[%s] a11y (not failing): page %s (%s): %s", b.journey, name, key, v)
		}
	}
}

// axeViolations injects axe-core into the page (unless it is there) and
// returns what it finds.
func (b *tab) axeViolations() []axeViolation {
	b.t.Helper()
	if !eval[bool](b, "look for axe", `typeof window.axe === 'object'`) {
		eval[chromedp.Void](b, "inject axe-core", b.axe+"\n;0")
	}
	return eval[[]axeViolation](b, "run axe-core", axeRun, chromedp.EvalAwaitPromise)
}

// structure is what checkStructure reads from a page.
type structure struct {
	H1         int      `json:"h1"`
	Unlabelled []string `json:"unlabelled"`
	Lang       string   `json:"lang"`
	Title      string   `json:"title"`
}

// structureJS counts the h1 elements and lists the visible form fields
// without an accessible label (a <label for>, a wrapping label,
// aria-label or aria-labelledby, with text).
const structureJS = `(() => {
  const visible = el => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length) && getComputedStyle(el).visibility !== 'hidden';
  const named = el => {
    if ((el.getAttribute('aria-label') || '').trim()) return true;
    const by = (el.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean);
    if (by.some(id => { const l = document.getElementById(id); return l && l.textContent.trim(); })) return true;
    return Array.from(el.labels || []).some(l => l.textContent.trim());
  };
  const fields = Array.from(document.querySelectorAll('input, select, textarea'))
    .filter(el => el.type !== 'hidden' && visible(el));
  return {
    h1: document.querySelectorAll('h1').length,
    unlabelled: fields.filter(el => !named(el)).map(el => el.outerHTML),
    lang: document.documentElement.lang,
    title: document.title,
  };
})()`

// checkStructure fails unless the page has exactly one h1, a title, a
// language, and a label for every visible field.
func (b *tab) checkStructure(name string) {
	b.t.Helper()
	s := b.structure()
	if s.H1 != 1 {
		b.t.Errorf("[%s] page %s has %d h1 elements, want exactly 1", b.journey, name, s.H1)
	}
	if len(s.Unlabelled) > 0 {
		b.t.Errorf("[%s] page %s has fields without a label: %s", b.journey, name, strings.Join(s.Unlabelled, ", "))
	}
	if strings.TrimSpace(s.Title) == "" || s.Lang == "" {
		b.t.Errorf("[%s] page %s: title %q, lang %q; want both", b.journey, name, s.Title, s.Lang)
	}
}

// structure reads the page's structure.
func (b *tab) structure() structure {
	b.t.Helper()
	return eval[structure](b, "read the page structure", structureJS)
}

// focusState is where focus is after a failed submit.
type focusState struct {
	Active       string   `json:"active"`
	FirstInvalid string   `json:"firstInvalid"`
	ErrorIDs     []string `json:"errorIds"`
	OK           bool     `json:"ok"`
}

// focusJS reports whether focus is on the first visible invalid field
// (aria-invalid="true") or on an error message it points to with
// aria-describedby.
const focusJS = `(() => {
  const visible = el => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const describe = el => !el ? 'none' : el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.name ? '[name=' + el.name + ']' : '');
  const a = document.activeElement;
  const first = Array.from(document.querySelectorAll('[aria-invalid="true"]')).filter(visible)[0];
  const ids = first ? (first.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean) : [];
  const errorIds = ids.filter(id => { const e = document.getElementById(id); return e && (e.getAttribute('role') === 'alert' || /error|alert/.test(e.className)); });
  return {active: describe(a), firstInvalid: describe(first), errorIds, ok: !!first && (a === first || (!!a.id && errorIds.includes(a.id)))};
})()`

// focusAfterError reads where focus is on a page shown after a failed
// submit.
func (b *tab) focusAfterError() focusState {
	b.t.Helper()
	return eval[focusState](b, "read the focus", focusJS)
}

// expectFocusOnError fails unless focus is on the first invalid field or
// its error message.
func (b *tab) expectFocusOnError(name string) {
	b.t.Helper()
	if f := b.focusAfterError(); !f.OK {
		b.t.Errorf("[%s] page %s after a failed submit: focus on %s, want the first invalid field %s or its error %v",
			b.journey, name, f.Active, f.FirstInvalid, f.ErrorIDs)
	}
}

// badPage breaks the rules the checks enforce, under the same CSP as
// sspr's pages: two h1, an unlabelled field, an image without alt text,
// and focus left on the body after a "failed submit".
const badPage = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Broken on purpose</title></head>
<body><main>
<h1>One</h1><h1>Two</h1>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="10" height="10">
<form method="post"><input id="code" name="code" type="text" aria-invalid="true" aria-describedby="code-error">
<p id="code-error" class="error" role="alert">Wrong.</p></form>
</main></body></html>`

// TestChecksCatchViolations makes sure the checks that pass on every page
// of the journeys can fail: axe-core, run the suite's way under a strict
// CSP, reports an image without alt text and an unlabelled field, and the
// structure and focus checks see what is wrong.
func TestChecksCatchViolations(t *testing.T) {
	t.Parallel()
	exe := requireChromium(t)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, badPage)
	}))
	t.Cleanup(ts.Close)
	b := newTab(t, exe, "self-test", desktopViewport())
	b.navigate(ts.URL)

	found := map[string]string{}
	for _, v := range b.axeViolations() {
		found[v.ID] = v.Impact
	}
	for _, id := range []string{"image-alt", "label"} {
		if imp := found[id]; imp != "critical" && imp != "serious" {
			t.Errorf("axe-core found %v; want %s as serious or critical", found, id)
		}
	}
	if s := b.structure(); s.H1 != 2 || len(s.Unlabelled) != 1 {
		t.Errorf("structure %+v; want 2 h1 and 1 unlabelled field", s)
	}
	if f := b.focusAfterError(); f.OK || f.FirstInvalid != "input#code[name=code]" || f.Active != "body" {
		t.Errorf("focus %+v; want focus on the body reported, the first invalid field being #code", f)
	}
	b.do("focus the error", chromedp.Evaluate[chromedp.Void](`document.getElementById('code-error').tabIndex = -1; document.getElementById('code-error').focus()`))
	if f := b.focusAfterError(); !f.OK {
		t.Errorf("focus on the field's error message: %+v, want it accepted", f)
	}
}
