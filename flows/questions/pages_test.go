package questions_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/questions"
	"github.com/sspr-go/sspr/templates"
)

// These tests render the flow's two pages from the embedded templates the
// way the plugin does (layout plus page, missingkey=error), with stand-ins
// for the plugin's view, stepPage and enrolView, to check that the pages
// work with the flow's data and are accessible.

type translator map[string]string

func (t translator) Get(key string, args ...any) string {
	s, ok := t[key]
	if !ok {
		s = key
	}
	for i := 0; i+1 < len(args); i += 2 {
		s = strings.ReplaceAll(s, "{"+fmt.Sprint(args[i])+"}", fmt.Sprint(args[i+1]))
	}
	return s
}

type view struct {
	Lang, Product, Logo, Base, CSRF string
	T                               translator
	Page                            any
}

type choice struct{ Flow, Label string }

type stepPage struct {
	Flow, Error, Notice string
	CodeLength, Minutes int
	Prompt              flows.Prompt
	Data                any
	Options             template.JS
	Script              string
	Others              []choice
	HelpURL             string
	Leave, LeaveLabel   string
}

type enrolView struct {
	Flow, Title, Action, State, Error string
	Added                             bool
	Back, Script                      string
	Data                              any
}

// catalog returns the English messages.
func catalog(t *testing.T) translator {
	t.Helper()
	raw, err := fs.ReadFile(templates.Default(), "messages/en.json")
	if err != nil {
		t.Fatal(err)
	}
	var en translator
	if err := json.Unmarshal(raw, &en); err != nil {
		t.Fatal(err)
	}
	return en
}

// render renders a page with a form: it also checks that exactly one field
// has the focus and that every field has a label.
func render(t *testing.T, page string, data any) string {
	t.Helper()
	html := renderPage(t, page, data)
	if n := strings.Count(html, " autofocus"); n != 1 {
		t.Fatalf("%s: %d autofocus fields", page, n)
	}
	for _, m := range regexp.MustCompile(`<(?:input|select) id="([a-z0-9]+)"`).FindAllStringSubmatch(html, -1) {
		if !strings.Contains(html, `<label for="`+m[1]+`">`) {
			t.Fatalf("%s: field %s has no label", page, m[1])
		}
	}
	return html
}

// renderPage renders a page as the plugin does and checks that it has no
// inline script or style.
func renderPage(t *testing.T, page string, data any) string {
	t.Helper()
	layout, err := fs.ReadFile(templates.Default(), "pages/layout.html")
	if err != nil {
		t.Fatal(err)
	}
	src, err := fs.ReadFile(templates.Default(), "pages/"+page+".html")
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := template.New("layout").Option("missingkey=error").Parse(string(layout))
	if err == nil {
		_, err = tpl.New(page).Parse(string(src))
	}
	if err != nil {
		t.Fatalf("parse %s: %v", page, err)
	}
	var buf bytes.Buffer
	if err := tpl.ExecuteTemplate(&buf, "layout", view{Lang: "en", Product: "Example", Base: "/recovery", CSRF: "csrf-token", T: catalog(t), Page: data}); err != nil {
		t.Fatalf("render %s: %v", page, err)
	}
	html := buf.String()
	if strings.Contains(html, "<script") || strings.Contains(html, "style=") || strings.Contains(html, "<style") {
		t.Fatalf("%s has inline script or style", page)
	}
	return html
}

func TestQuestionsPage(t *testing.T) {
	fx := setup(t, questions.Config{})
	alice := flows.Subject{UserID: "alice"}
	fx.enrol(t, alice.UserID, answers)
	fx.begin(t, "j1", alice)
	asked := fx.asked(t, "j1")
	page := stepPage{
		Flow: questions.ID, Prompt: fx.flow.Prompt(), Data: asked,
		Others: []choice{{Flow: "totp", Label: "totp.choice"}}, Leave: "/recovery/", LeaveLabel: "common.start_again",
	}
	html := render(t, "questions", page)
	for _, want := range []string{
		`action="/recovery/verify"`, `name="csrf" value="csrf-token"`, `name="flow" value="questions"`,
		"Answer your security questions", "Use another method", `href="/recovery/"`,
	} {
		if !strings.Contains(html, want) {
			t.Fatalf("page lacks %q:\n%s", want, html)
		}
	}
	en := catalog(t)
	for i, a := range asked {
		label := fmt.Sprintf(`<label for="answer%d">%s</label>`, i, template.HTMLEscapeString(en[a.Question]))
		if !strings.Contains(html, label) {
			t.Fatalf("page lacks %s:\n%s", label, html)
		}
	}
	if strings.Contains(html, "aria-invalid") || strings.Contains(html, `role="alert"`) {
		t.Fatal("an error shown without one")
	}

	page.Error = "At least one answer isn't right. You have 2 tries left."
	html = render(t, "questions", page)
	if !strings.Contains(html, `<p id="answers-error" class="error" role="alert">At least one answer isn&#39;t right.`) ||
		strings.Count(html, `aria-invalid="true" aria-describedby="answers-error"`) != len(asked) {
		t.Fatalf("error not announced and linked:\n%s", html)
	}

	// A literal question is shown as it is, escaped.
	page.Data = []questions.Asked{{Field: "answer0", Question: "Who <b>was</b> it?"}}
	if html := render(t, "questions", page); !strings.Contains(html, `<label for="answer0">Who &lt;b&gt;was&lt;/b&gt; it?</label>`) {
		t.Fatalf("literal question:\n%s", html)
	}
}

func TestEnrolPage(t *testing.T) {
	fx := setup(t, questions.Config{})
	start, err := fx.flow.StartEnrol(t.Context(), flows.EnrolRequest{Env: fx.env, UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	v := enrolView{Flow: questions.ID, Title: "questions.choice", Action: "/recovery/account/security/questions", Back: "/recovery/account/security", Data: start.Data}
	html := render(t, start.Page, v)
	if strings.Count(html, "<fieldset") != 3 || strings.Count(html, "<option") != 3*9 ||
		!strings.Contains(html, `<select id="question0" name="question0" required autofocus>`) ||
		strings.Count(html, " selected>") != 3 || strings.Count(html, `<option value="" selected>`) != 3 {
		t.Fatalf("start page:\n%s", html)
	}
	for i := range 3 {
		if !strings.Contains(html, fmt.Sprintf(`<input id="answer%d" name="answer%d" type="text" autocomplete="off"`, i, i)) {
			t.Fatalf("answer%d field:\n%s", i, html)
		}
	}

	form := url.Values{
		"question0": {"questions.q.first_teacher"}, "answer0": {"Fitzgerald"},
		"question1": {"questions.q.parents_met"}, "answer1": {"ab"},
		"question2": {"questions.q.first_dish"}, "answer2": {"Carbonara"},
	}
	bad := fx.finish(t, "alice", form)
	v.Error, v.Data = bad.Error, bad.Data
	html = render(t, bad.Page, v)
	for _, want := range []string{
		`<p class="alert" role="alert" id="enrol-error">`,
		`aria-invalid="true" aria-describedby="answer1-error answers-hint" autofocus>`,
		`<p id="answer1-error" class="error">Enter at least 3 letters or digits.</p>`,
		`<option value="questions.q.parents_met" selected>`,
	} {
		if !strings.Contains(html, want) {
			t.Fatalf("error page lacks %q:\n%s", want, html)
		}
	}
	for _, answer := range []string{"Fitzgerald", "Carbonara", `value="ab"`} {
		if strings.Contains(html, answer) {
			t.Fatalf("error page echoes %q", answer)
		}
	}

	form.Set("answer1", "Bad Tölz")
	done := fx.finish(t, "alice", form)
	v.Error, v.Data, v.Added = done.Error, done.Data, done.Added
	if html := renderPage(t, done.Page, v); !strings.Contains(html, "Security questions saved") || !strings.Contains(html, `href="/recovery/account/security"`) {
		t.Fatalf("added page:\n%s", html)
	}
}
