package plugin_test

import (
	"log/slog"
	"regexp"
	"strings"

	"golang.org/x/net/html"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
)

// boundOnly is a flow of the wrong kind for a configuration test.
type boundOnly struct{ flows.Flow }

func (boundOnly) ID() string       { return "totp" }
func (boundOnly) Kind() flows.Kind { return flows.KindBound }

func TestNewReportsEveryBadField(t *testing.T) {
	want := strings.Join([]string{
		"sspr: config: field 'BaseURL': is required",
		"sspr: config: field 'Directory': is required",
		"sspr: config: field 'Store': is required",
		"sspr: config: field 'Sender': is required",
		"sspr: config: field 'Flows': needs at least one flow",
		"sspr: config: field 'Keys': needs at least one key",
	}, "\n")
	_, err := plugin.New(plugin.Config{})
	if err == nil || err.Error() != want {
		t.Fatalf("New(zero) error:\n%v\nwant:\n%s", err, want)
	}
}

func TestNewFieldErrors(t *testing.T) {
	h := newHarness(t)
	f, _ := email.New(email.Config{})
	tests := []struct {
		name   string
		mutate func(*plugin.Config)
		want   string
	}{
		{"http base on a public host", func(c *plugin.Config) { c.BaseURL = "http://id.example.com/recovery" },
			"sspr: config: field 'BaseURL': must be https (plain http is allowed only for loopback hosts)"},
		{"relative base", func(c *plugin.Config) { c.BaseURL = "/recovery" },
			"sspr: config: field 'BaseURL': must be an absolute http(s) URL"},
		{"base with query", func(c *plugin.Config) { c.BaseURL = "https://id.example.com/r?x=1" },
			"sspr: config: field 'BaseURL': must not have user info, query or fragment"},
		{"short key", func(c *plugin.Config) { c.Keys = [][]byte{[]byte("short")} },
			"sspr: config: field 'Keys': key 0 has 5 bytes, needs at least 32"},
		{"no channel", func(c *plugin.Config) { c.Flows = []flows.Flow{boundOnly{}} },
			"sspr: config: field 'Flows': needs at least one contact channel flow (email or SMS)"},
		{"duplicate flow", func(c *plugin.Config) { c.Flows = []flows.Flow{f, f} },
			"sspr: config: field 'Flows': ID \"email\" appears twice"},
		{"reserved flow ID", func(c *plugin.Config) { c.Flows = []flows.Flow{f, &fixedFactor{id: "oidc"}} },
			"sspr: config: field 'Flows': entry 1 uses the reserved ID \"oidc\""},
		{"journey ttl", func(c *plugin.Config) { c.JourneyTTL = 2 * time.Hour },
			"sspr: config: field 'JourneyTTL': must be between 1m and 1h0m0s"},
		{"bad limit", func(c *plugin.Config) { c.Limits.StartsPerIP = plugin.Limit{N: -1, Window: time.Minute} },
			"sspr: config: field 'Limits.StartsPerIP': needs N > 0 and a Window of at least 1s"},
		{"bad allow-list", func(c *plugin.Config) { c.ReturnToAllowList = []string{"login"} },
			"sspr: config: field 'ReturnToAllowList': entry 0: must be an absolute http(s) URL"},
		{"weak password policy", func(c *plugin.Config) { c.Password.MaxLength = 20 },
			"sspr: config: field 'Password': password: config: field 'MaxLength': must be at least 64"},
		{"missing template", func(c *plugin.Config) {
			c.Templates = fstest.MapFS{"pages/start.html": {Data: []byte(`{{define "title"}}x{{end}}`)}}
		}, "sspr: config: field 'Templates': pages/start.html: template \"content\" is not defined"},
		{"broken template", func(c *plugin.Config) {
			c.Templates = fstest.MapFS{"email/reset.txt": {Data: []byte(`{{define "subject"}}{{.Nope}`)}}
		}, "sspr: config: field 'Templates': email/reset.txt: template: email/reset.txt:1: bad character U+007D '}'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := h.config()
			tt.mutate(&cfg)
			_, err := plugin.New(cfg)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestTemplateOverride(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) {
		c.Templates = fstest.MapFS{
			"pages/start.html": {Data: []byte(`{{define "title"}}Recover{{end}}{{define "content"}}<h1>Branded start</h1>` +
				`<form method="post" action="{{.Base}}/"><input name="csrf" value="{{.CSRF}}"></form>{{end}}`)},
			"static/style.css": {Data: []byte(`:root{--color-primary:#c00}`)},
		}
		c.ProductName = "Acme ID"
	})
	b := plugintest.NewBrowser(t)
	p := b.Get(h.base + "/")
	if !strings.Contains(p.Text(), "Branded start") || !strings.Contains(p.Text(), "Acme ID") {
		t.Fatalf("override not used: %s", p.Text())
	}
	if css := b.Get(h.base + "/static/style.css"); !strings.Contains(string(css.Body), "#c00") || css.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Fatalf("css override: %s", css.Body)
	}
	// Pages not overridden keep the default.
	if p := b.Get(h.base + "/verify"); !strings.Contains(p.Text(), "Your reset session has ended") {
		t.Fatalf("default page: %s", p.Text())
	}
}

func TestNewLeavesCallerConfigAlone(t *testing.T) {
	h := newHarness(t)
	cfg := h.config()
	key := string(cfg.Keys[0])
	if _, err := plugin.New(cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.ProductName != "" || cfg.JourneyTTL != 0 || cfg.Limits != (plugin.Limits{}) || string(cfg.Keys[0]) != key || len(cfg.Flows) != 1 {
		t.Fatalf("New changed the caller's config: %+v", cfg)
	}
}

func TestBranding(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) {
		c.ProductName = "Acme ID"
		c.LogoURL = "/static/acme.svg"
		c.Templates = fstest.MapFS{"static/brand.css": {Data: []byte(`:root{--color-primary:#0f766e}`)}}
	})
	b := plugintest.NewBrowser(t)
	p := b.Get(h.base + "/")
	logos := p.Find(func(n *html.Node) bool { return plugintest.Attr(n, "class") == "logo" })
	if len(logos) != 1 || plugintest.Attr(logos[0], "src") != "/static/acme.svg" || !strings.Contains(p.Text(), "Acme ID") {
		t.Fatalf("branded page: %s", p.Body)
	}
	if css := b.Get(h.base + "/static/brand.css"); !strings.Contains(string(css.Body), "#0f766e") {
		t.Fatalf("brand.css: %s", css.Body)
	}
	// Without an override brand.css is served, empty of rules.
	plain := newHarness(t)
	css := b.Get(plain.base + "/static/brand.css")
	if rules := regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(string(css.Body), ""); css.Status != 200 || strings.TrimSpace(rules) != "" {
		t.Fatalf("default brand.css: %d %s", css.Status, css.Body)
	}
	cfg := h.config()
	cfg.LogoURL = "javascript:alert(1)"
	if _, err := plugin.New(cfg); err == nil || !strings.Contains(err.Error(), "field 'LogoURL'") {
		t.Fatalf("bad logo URL: %v", err)
	}
}

// plainDirectory hides every optional capability of the test directory.
type plainDirectory struct{ plugin.Directory }

func TestNewWarnsWithoutSessionRevoker(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		dir  plugin.Directory
		warn bool
	}{{h.dir, false}, {plainDirectory{h.dir}, true}} {
		var logs strings.Builder
		cfg := h.config()
		cfg.Directory = tt.dir
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		if _, err := plugin.New(cfg); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(logs.String(), "does not implement SessionRevoker"); got != tt.warn {
			t.Errorf("%T: warning logged %v, want %v: %s", tt.dir, got, tt.warn, logs.String())
		}
	}
}
