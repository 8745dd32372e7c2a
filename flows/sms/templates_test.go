package sms_test

import (
	"bytes"
	"encoding/json"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"strings"
	"testing"
	texttemplate "text/template"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/sms"
)

// The default templates of this flow, read from the repository's
// templates directory and rendered the way the plugin renders them, with
// a translator over the real catalogs that fails the test on an unknown
// key.

var templatesDir = os.DirFS("../../templates")

type translator struct {
	t   *testing.T
	msg map[string]string
}

func (tr translator) Get(key string, args ...any) string {
	s, ok := tr.msg[key]
	if !ok {
		tr.t.Errorf("message key %q is in no catalog", key)
		return key
	}
	for i := 0; i+1 < len(args); i += 2 {
		s = strings.ReplaceAll(s, "{"+toString(args[i])+"}", toString(args[i+1]))
	}
	if strings.ContainsAny(s, "{}") {
		tr.t.Errorf("message %q left a placeholder: %q", key, s)
	}
	return s
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

func catalog(t *testing.T, lang string) translator {
	t.Helper()
	raw, err := fs.ReadFile(templatesDir, "messages/"+lang+".json")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return translator{t: t, msg: m}
}

// gsm7 is the GSM 03.38 basic character set: a message of these
// characters fits 160 in one SMS segment (others force UCS-2, 70).
const gsm7 = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

func TestSMSTemplates(t *testing.T) {
	for _, name := range []string{"code", "enrol"} {
		src, err := fs.ReadFile(templatesDir, "sms/"+name+".txt")
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := texttemplate.New(name).Option("missingkey=error").Parse(string(src))
		if err != nil {
			t.Fatal(err)
		}
		if tmpl.Lookup("subject") != nil || tmpl.Lookup("text") == nil {
			t.Fatalf("sms/%s.txt must define \"text\" and no \"subject\"", name)
		}
		// The data goes through JSON in the outbox, as in the plugin.
		raw, _ := json.Marshal(sms.CodeData{Code: "01234567", Minutes: 10, Domain: "id.example.com"})
		var data any
		if err := json.Unmarshal(raw, &data); err != nil {
			t.Fatal(err)
		}
		for _, lang := range []string{"en", "de"} {
			var out bytes.Buffer
			err := tmpl.ExecuteTemplate(&out, "text", struct {
				Product string
				Data    any
				T       translator
			}{"Example Identity", data, catalog(t, lang)})
			if err != nil {
				t.Fatal(err)
			}
			text := strings.TrimSpace(out.String())
			lines := strings.Split(text, "\n")
			if last := lines[len(lines)-1]; last != "@id.example.com #01234567" {
				t.Errorf("%s/%s: last line %q is not the origin-bound code line", name, lang, last)
			}
			if !strings.Contains(lines[0], "01234567") || !strings.Contains(lines[0], "10") || !strings.Contains(lines[0], "Example Identity") {
				t.Errorf("%s/%s: %q", name, lang, lines[0])
			}
			if n := len([]rune(text)); n > 160 {
				t.Errorf("%s/%s: %d characters, more than one SMS segment: %q", name, lang, n, text)
			}
			for _, r := range text {
				if !strings.ContainsRune(gsm7, r) {
					t.Errorf("%s/%s: %q is not in the GSM 7-bit alphabet (the message would need UCS-2)", name, lang, r)
				}
			}
		}
	}
}

// enrolView mirrors the data the plugin gives enrolment pages.
type enrolView struct {
	Flow, Title, Action, State, Error string
	Added                             bool
	Back, Script                      string
	Data                              any
}

func renderEnrolPage(t *testing.T, lang string, page flows.EnrolPage) string {
	t.Helper()
	layout, err := fs.ReadFile(templatesDir, "pages/layout.html")
	if err != nil {
		t.Fatal(err)
	}
	src, err := fs.ReadFile(templatesDir, "pages/enrol-sms.html")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := htmltemplate.New("layout").Option("missingkey=error").Parse(string(layout))
	if err == nil {
		tmpl, err = tmpl.New("enrol-sms").Parse(string(src))
	}
	if err != nil {
		t.Fatal(err)
	}
	v := enrolView{Flow: "sms", Title: "sms.choice", Action: "/recovery/account/security/sms/add", Error: page.Error,
		Added: page.Added, Back: "/recovery/account/security", Data: page.Data}
	if page.State != nil {
		v.State = "SEALED"
	}
	var out bytes.Buffer
	err = tmpl.ExecuteTemplate(&out, "layout", struct {
		Lang, Product, Logo, Base, CSRF string
		T                               translator
		Page                            any
	}{lang, "Example", "", "/recovery", "CSRF", catalog(t, lang), v})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestEnrolPage(t *testing.T) {
	fx := setup(t, sms.Config{DefaultRegion: "DE"})
	start, err := fx.flow.StartEnrol(t.Context(), flows.EnrolRequest{Env: fx.env, UserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	codeStep, code := fx.sendCode(t, "u1", "0151 12345678")
	wrongCode := fx.finish(t, "u1", codeStep.State, map[string][]string{"code": {wrong(code)}})
	resent := fx.finish(t, "u1", codeStep.State, map[string][]string{"resend": {"1"}})
	_, d := fx.last(t)
	added := fx.finish(t, "u1", codeStep.State, map[string][]string{"code": {d.Code}})
	invalid := fx.finish(t, "u1", nil, map[string][]string{"phone": {"<b>12</b>"}})

	for _, lang := range []string{"en", "de"} {
		tests := []struct {
			name string
			page flows.EnrolPage
			want []string
			not  []string
		}{
			{"number", start, []string{`type="tel"`, `autocomplete="tel"`, `inputmode="tel"`, `name="phone"`, `autofocus`,
				`<label for="phone">`, `aria-describedby="phone-hint"`, `&#43;49`, `name="csrf" value="CSRF"`},
				[]string{`aria-invalid`, `role="alert"`, `name="state"`}},
			{"invalid number", invalid, []string{`aria-invalid="true"`, `aria-describedby="phone-hint enrol-error"`,
				`id="enrol-error" class="error" role="alert"`, `value="&lt;b&gt;12&lt;/b&gt;"`}, []string{"<b>12"}},
			{"code", codeStep, []string{`name="code"`, `autocomplete="one-time-code"`, `inputmode="numeric"`, `autofocus`,
				`name="state" value="SEALED"`, `name="resend"`, `&#43;49 1511 2345678`, `maxlength="32"`, `<label for="code">`},
				[]string{`aria-invalid`, `name="phone"`}},
			{"wrong code", wrongCode, []string{`aria-invalid="true"`, `aria-describedby="enrol-error"`, `role="alert"`}, nil},
			{"resent", resent, []string{`role="status"`}, []string{`role="alert"`}},
			{"added", added, []string{`&#43;49 •••••••••78`, `href="/recovery/account/security"`}, []string{`<form`, "12345678"}},
		}
		for _, tt := range tests {
			t.Run(lang+"/"+tt.name, func(t *testing.T) {
				html := renderEnrolPage(t, lang, tt.page)
				for _, w := range tt.want {
					if !strings.Contains(html, w) {
						t.Errorf("page lacks %q:\n%s", w, html)
					}
				}
				for _, n := range tt.not {
					if strings.Contains(html, n) {
						t.Errorf("page has %q:\n%s", n, html)
					}
				}
				if strings.Contains(html, "<script") || strings.Contains(html, "style=") || strings.Contains(html, "<style") {
					t.Error("page has inline script or style")
				}
			})
		}
	}
}

// TestCatalogKeys checks that every message key the flow hands the engine
// is in both catalogs.
func TestCatalogKeys(t *testing.T) {
	p := setup(t, sms.Config{}).flow.Prompt()
	keys := []string{p.Heading, p.Intro, p.Label, p.Choice, p.Section, p.Add,
		"sms.enrol.invalid_number", "sms.enrol.not_mobile", "sms.enrol.duplicate", "sms.enrol.too_many",
		"sms.enrol.malformed", "sms.enrol.wrong_code", "sms.enrol.exhausted", "sms.enrol.expired",
		"sms.enrol.resend_limit", "sms.enrol.resent", "sms.enrol.phone_hint", "sms.enrol.phone_hint_region"}
	for _, lang := range []string{"en", "de"} {
		c := catalog(t, lang)
		for _, k := range keys {
			if _, ok := c.msg[k]; !ok {
				t.Errorf("%s: no message %q", lang, k)
			}
		}
	}
}
