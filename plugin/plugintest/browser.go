// Package plugintest is a test kit for hosts and for sspr's own tests: a
// small cookie-keeping HTTP client that reads pages and submits their forms
// the way a browser without JavaScript does, so tests walk the real pages.
package plugintest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Browser is a cookie-keeping client for tests. It does not follow
// redirects on its own, so tests can check each step; use [Browser.Follow].
type Browser struct {
	// Client is the underlying client; its Jar holds the cookies.
	Client *http.Client
	// Header is added to every request (for example Origin or
	// Sec-Fetch-Site).
	Header http.Header
	t      testing.TB
}

// NewBrowser returns a browser with an empty cookie jar.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("plugintest: cookie jar: %v", err)
	}
	return &Browser{
		Client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		Header: http.Header{},
		t:      t,
	}
}

// Page is a fetched response with its body read.
type Page struct {
	// URL is the requested URL.
	URL *url.URL
	// Status is the HTTP status code.
	Status int
	// Header is the response header.
	Header http.Header
	// Body is the response body.
	Body []byte
	t    testing.TB
	doc  *html.Node
}

// Get fetches rawURL.
func (b *Browser) Get(rawURL string) *Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatalf("plugintest: GET %s: %v", rawURL, err)
	}
	return b.Do(req)
}

// Post submits form values to rawURL as application/x-www-form-urlencoded.
func (b *Browser) Post(rawURL string, values url.Values) *Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(values.Encode()))
	if err != nil {
		b.t.Fatalf("plugintest: POST %s: %v", rawURL, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

// Do sends req with the browser's cookies and extra headers.
func (b *Browser) Do(req *http.Request) *Page {
	b.t.Helper()
	for k, v := range b.Header {
		req.Header[k] = v
	}
	resp, err := b.Client.Do(req)
	if err != nil {
		b.t.Fatalf("plugintest: %s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("plugintest: read %s: %v", req.URL, err)
	}
	return &Page{URL: req.URL, Status: resp.StatusCode, Header: resp.Header, Body: body, t: b.t}
}

// Follow fetches the page's Location (resolved against its URL) until the
// response is not a redirect, at most 10 times.
func (b *Browser) Follow(p *Page) *Page {
	b.t.Helper()
	for i := 0; i < 10 && p.Status >= 300 && p.Status < 400; i++ {
		loc, err := p.URL.Parse(p.Header.Get("Location"))
		if err != nil {
			b.t.Fatalf("plugintest: bad Location %q: %v", p.Header.Get("Location"), err)
		}
		p = b.Get(loc.String())
	}
	return p
}

// Submit fills the form whose action ends with actionSuffix (its hidden
// fields included) with fields and posts it.
func (b *Browser) Submit(p *Page, actionSuffix string, fields map[string]string) *Page {
	b.t.Helper()
	action, values := p.Form(actionSuffix)
	for k, v := range fields {
		values.Set(k, v)
	}
	return b.Post(action, values)
}

// Doc returns the parsed HTML document.
func (p *Page) Doc() *html.Node {
	p.t.Helper()
	if p.doc == nil {
		doc, err := html.Parse(bytes.NewReader(p.Body))
		if err != nil {
			p.t.Fatalf("plugintest: parse %s: %v", p.URL, err)
		}
		p.doc = doc
	}
	return p.doc
}

// Form returns the absolute action and the current values (inputs with a
// name, including hidden ones) of the first form whose action ends with
// actionSuffix. It fails the test if there is none.
func (p *Page) Form(actionSuffix string) (string, url.Values) {
	p.t.Helper()
	var form *html.Node
	Walk(p.Doc(), func(n *html.Node) bool {
		if form == nil && n.DataAtom == atom.Form && strings.HasSuffix(Attr(n, "action"), actionSuffix) {
			form = n
			return false
		}
		return true
	})
	if form == nil {
		p.t.Fatalf("plugintest: %s (status %d) has no form with action …%s; text: %s", p.URL, p.Status, actionSuffix, p.Text())
	}
	action, err := p.URL.Parse(Attr(form, "action"))
	if err != nil {
		p.t.Fatalf("plugintest: bad form action: %v", err)
	}
	values := url.Values{}
	Walk(form, func(n *html.Node) bool {
		if n.DataAtom == atom.Input && Attr(n, "name") != "" {
			values.Set(Attr(n, "name"), Attr(n, "value"))
		}
		return true
	})
	return action.String(), values
}

// Text returns the visible text of the page's body, with whitespace
// collapsed.
func (p *Page) Text() string {
	var sb strings.Builder
	Walk(p.Doc(), func(n *html.Node) bool {
		if n.Type == html.ElementNode && (n.DataAtom == atom.Script || n.DataAtom == atom.Style || n.DataAtom == atom.Head) {
			return false
		}
		if n.Type == html.TextNode {
			sb.WriteString(n.Data)
			sb.WriteByte(' ')
		}
		return true
	})
	return strings.Join(strings.Fields(sb.String()), " ")
}

// Find returns the elements for which match returns true, in document order.
func (p *Page) Find(match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	Walk(p.Doc(), func(n *html.Node) bool {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		return true
	})
	return out
}

// Walk visits n and its descendants depth-first while visit returns true
// for a node (returning false skips that node's children).
func Walk(n *html.Node, visit func(*html.Node) bool) bool {
	if !visit(n) {
		return true
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		Walk(c, visit)
	}
	return true
}

// Attr returns the value of attribute key of n, or "".
func Attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
