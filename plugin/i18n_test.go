package plugin_test

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
	"github.com/sspr-go/sspr/templates"
)

func TestGermanFromAcceptLanguage(t *testing.T) {
	h := newHarness(t)
	b := plugintest.NewBrowser(t)
	b.Header.Set("Accept-Language", "de-CH, de;q=0.9, en;q=0.5")
	start := b.Get(h.base + "/")
	if !strings.Contains(start.Text(), "Passwort zurücksetzen") || !strings.Contains(string(start.Body), `<html lang="de">`) {
		t.Fatalf("German start page: %s", start.Text())
	}
	check := b.Follow(b.Submit(start, "/recovery/", map[string]string{"identifier": "alice"}))
	if !strings.Contains(check.Text(), "Prüfen Sie Ihre E-Mails") {
		t.Fatalf("German check page: %s", check.Text())
	}
	// The email is in the language of the journey.
	h.deliver()
	msgs := h.mail.to("alice@example.com")
	if len(msgs) != 1 || !strings.Contains(msgs[0].Subject, "zurücksetzen") || !strings.Contains(msgs[0].Text, "Oder geben Sie dort diesen Code ein:") {
		t.Fatalf("German email: %+v", msgs)
	}
	// Errors are translated too, with their numbers.
	bad := b.Submit(check, "/recovery/verify", map[string]string{"code": "1"})
	if !strings.Contains(bad.Text(), "Geben Sie den 8-stelligen Code aus der E-Mail ein.") {
		t.Fatalf("German error: %s", bad.Text())
	}
}

func TestUnknownLanguageFallsBackToEnglish(t *testing.T) {
	h := newHarness(t)
	b := plugintest.NewBrowser(t)
	b.Header.Set("Accept-Language", "ja, xx-YY;q=0.5")
	if p := b.Get(h.base + "/"); !strings.Contains(p.Text(), "Reset your password") {
		t.Fatalf("fallback: %s", p.Text())
	}
}

func TestHostChoosesTheLanguage(t *testing.T) {
	h := newHarness(t, func(c *plugin.Config) {
		c.Locale = func(r *http.Request) string { return r.URL.Query().Get("ui_locales") }
	})
	b := plugintest.NewBrowser(t)
	b.Header.Set("Accept-Language", "en")
	if p := b.Get(h.base + "/?ui_locales=de"); !strings.Contains(p.Text(), "Passwort zurücksetzen") {
		t.Fatalf("host override: %s", p.Text())
	}
	if p := b.Get(h.base + "/"); !strings.Contains(p.Text(), "Reset your password") {
		t.Fatalf("no override: %s", p.Text())
	}
}

func TestAddingALanguageIsOneFile(t *testing.T) {
	h := newHarness(t)
	// A host adds French by shipping messages/fr.json: every English key.
	fr := frenchCatalog(t)
	h2 := newHarness(t, func(c *plugin.Config) { c.Templates = fstest.MapFS{"messages/fr.json": {Data: fr}} })
	b := plugintest.NewBrowser(t)
	b.Header.Set("Accept-Language", "fr")
	if p := b.Get(h2.base + "/"); !strings.Contains(p.Text(), "Réinitialiser") {
		t.Fatalf("French page: %s", p.Text())
	}
	// An incomplete catalog fails at New, naming what is missing.
	cfg := h.config()
	cfg.Templates = fstest.MapFS{"messages/fr.json": {Data: []byte(`{"start.heading": "Réinitialiser"}`)}}
	if _, err := plugin.New(cfg); err == nil || !strings.Contains(err.Error(), "messages/fr.json: lacks [") {
		t.Fatalf("incomplete catalog: %v", err)
	}
}

// frenchCatalog is the English catalog with the start page's heading in
// French: a complete catalog, as New requires.
func frenchCatalog(t *testing.T) []byte {
	t.Helper()
	raw, err := fs.ReadFile(templates.Default(), "messages/en.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["start.heading"] = "Réinitialiser votre mot de passe"
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
