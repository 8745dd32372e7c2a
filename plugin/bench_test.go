package plugin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
)

// BenchmarkStart measures one reset start as a browser does it: POST the
// identifier with its CSRF token and cookie, over a real loopback HTTP
// connection, on SQLite, including the queued email. Rate limits are off so
// that the benchmark measures the work rather than the 429 page.
//
//	go test -run '^$' -bench BenchmarkStart -benchtime 3000x ./plugin/
func BenchmarkStart(b *testing.B) {
	for _, who := range []string{"known", "unknown"} {
		b.Run(who, func(b *testing.B) {
			h := newHarness(b, func(c *plugin.Config) { c.InsecureDisableRateLimits = true })
			br := plugintest.NewBrowser(b)
			action, values := br.Get(h.base + "/").Form("/recovery/")
			values.Set("identifier", map[string]string{"known": "alice@example.com", "unknown": "nobody@example.com"}[who])
			body := values.Encode()
			u, err := url.Parse(action)
			if err != nil {
				b.Fatal(err)
			}
			cookies := br.Client.Jar.Cookies(u)
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for _, c := range cookies {
					req.AddCookie(c)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusSeeOther {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
