package templates_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sspr-go/sspr/templates"
)

func catalog(t *testing.T, lang string) map[string]string {
	t.Helper()
	raw, err := fs.ReadFile(templates.Default(), "messages/"+lang+".json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s.json: %v", lang, err)
	}
	return m
}

func TestEveryCatalogHasTheEnglishKeys(t *testing.T) {
	en := catalog(t, "en")
	files, err := fs.Glob(templates.Default(), "messages/*.json")
	if err != nil || len(files) < 2 {
		t.Fatalf("catalogs: %v %v", files, err)
	}
	placeholder := regexp.MustCompile(`\{[a-z]+\}`)
	for _, f := range files {
		lang := strings.TrimSuffix(path.Base(f), ".json")
		if lang == "en" {
			continue
		}
		other := catalog(t, lang)
		for k, v := range en {
			tr, ok := other[k]
			if !ok {
				t.Errorf("%s lacks %q", f, k)
				continue
			}
			if strings.TrimSpace(tr) == "" {
				t.Errorf("%s: %q is empty", f, k)
			}
			want, got := placeholder.FindAllString(v, -1), placeholder.FindAllString(tr, -1)
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(want, got) {
				t.Errorf("%s: %q has placeholders %v, English %v", f, k, got, want)
			}
		}
		for k := range other {
			if _, ok := en[k]; !ok {
				t.Errorf("%s has %q, which English lacks", f, k)
			}
		}
	}
}

func TestTemplatesUseOnlyKnownKeys(t *testing.T) {
	en := catalog(t, "en")
	used := regexp.MustCompile(`T\.Get "([a-z0-9_.]+)"`)
	err := fs.WalkDir(templates.Default(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".html") || strings.HasSuffix(p, ".txt")) {
			return err
		}
		raw, err := fs.ReadFile(templates.Default(), p)
		if err != nil {
			return err
		}
		for _, m := range used.FindAllStringSubmatch(string(raw), -1) {
			if _, ok := en[m[1]]; !ok {
				t.Errorf("%s uses unknown key %q", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPagesAndEmailsExist(t *testing.T) {
	for _, p := range templates.Pages() {
		if _, err := fs.Stat(templates.Default(), "pages/"+p+".html"); err != nil {
			t.Errorf("page %s: %v", p, err)
		}
	}
	for _, e := range templates.Emails() {
		if _, err := fs.Stat(templates.Default(), "email/"+e+".txt"); err != nil {
			t.Errorf("email %s: %v", e, err)
		}
	}
	for _, e := range templates.SMS() {
		if _, err := fs.Stat(templates.Default(), "sms/"+e+".txt"); err != nil {
			t.Errorf("sms %s: %v", e, err)
		}
	}
}

// TestCodeUsesOnlyKnownKeys reads the Go code that hands message keys to
// the pages (the plugin and the flows) and checks each key exists.
func TestCodeUsesOnlyKnownKeys(t *testing.T) {
	en := catalog(t, "en")
	key := regexp.MustCompile(`"((?:common|start|check|code|webauthn|choose|help|confirm|elsewhere|password|done|changed|verify|resend|limit|security|totp|recovery|error|sms|questions|notice)\.[a-z0-9_.]+)"`)
	// Audit event names look like keys but are not shown to anyone.
	events := map[string]bool{"password.change": true}
	found := 0
	for _, dir := range []string{"../plugin", "../flows/email", "../flows/sms", "../flows/questions", "../flows/totp", "../flows/recoverycodes", "../flows/webauthn"} {
		files, err := filepath.Glob(dir + "/*.go")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range key.FindAllStringSubmatch(string(raw), -1) {
				if events[m[1]] {
					continue
				}
				found++
				if _, ok := en[m[1]]; !ok {
					t.Errorf("%s uses unknown key %q", f, m[1])
				}
			}
		}
	}
	if found < 40 {
		t.Fatalf("found only %d keys in the code; is the pattern stale?", found)
	}
}
