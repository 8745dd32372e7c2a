package plugin_test

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/flows/questions"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
)

// answers are alice's: question key → answer.
var answers = map[string]string{
	"questions.q.first_teacher": "Mrs Hatter",
	"questions.q.childhood_toy": "Dinah the cat",
	"questions.q.first_dish":    "Treacle tart",
}

// questionsHarness has email and security questions (hashed through a
// countingHasher), two methods required, and alice's answers enrolled.
func questionsHarness(t *testing.T, mutate ...func(*plugin.Config)) (*harness, *countingHasher) {
	t.Helper()
	var (
		q      *questions.Flow
		hashes *countingHasher
	)
	h := newHarness(t, append([]func(*plugin.Config){func(c *plugin.Config) {
		var err error
		st := &flowtest.WatchStore{Store: c.Store}
		c.Store = st
		hashes = newCountingHasher(c.Hasher, st)
		q, err = questions.New(questions.Config{Store: st, InsecureWeakArgon2: true,
			Argon2: questions.Argon2{Memory: 64, Time: 1, Threads: 1}, Hasher: hashes})
		if err != nil {
			t.Fatal(err)
		}
		mail, _ := email.New(email.Config{})
		c.Flows = []flows.Flow{mail, q}
		c.MethodsRequired = 2
	}}, mutate...)...)
	form := map[string][]string{}
	i := 0
	for k, a := range answers {
		n := string(rune('0' + i))
		form["question"+n], form["answer"+n] = []string{k}, []string{a}
		i++
	}
	page, err := q.FinishEnrol(t.Context(), flows.EnrolRequest{Env: flowtest.NewEnv(h.clock.Now()), UserID: "u-alice", Form: form})
	if err != nil || !page.Added {
		t.Fatalf("enrol alice's answers: %v %+v", err, page)
	}
	return h, hashes
}

// askedAnswers fills the questions page with alice's answers (typed in
// another case and spacing), or wrong ones.
func askedAnswers(t *testing.T, page *plugintest.Page, right bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, in := range page.Find(func(n *html.Node) bool {
		return n.Data == "input" && strings.HasPrefix(plugintest.Attr(n, "name"), "answer")
	}) {
		id := plugintest.Attr(in, "id")
		labels := page.Find(func(n *html.Node) bool { return n.Data == "label" && plugintest.Attr(n, "for") == id })
		if len(labels) != 1 {
			t.Fatalf("answer field %s has %d labels", id, len(labels))
		}
		var a string
		for k, v := range answers {
			if strings.Contains(nodeText(labels[0]), questionText(k)) {
				a = v
			}
		}
		if a == "" {
			t.Fatalf("question %q is none of alice's", nodeText(labels[0]))
		}
		if right {
			out[plugintest.Attr(in, "name")] = "  " + strings.ToUpper(a) + " "
		} else {
			out[plugintest.Attr(in, "name")] = "wrong answer"
		}
	}
	if len(out) != 2 {
		t.Fatalf("%d questions asked, want 2", len(out))
	}
	return out
}

func nodeText(n *html.Node) string {
	var sb strings.Builder
	plugintest.Walk(n, func(c *html.Node) bool {
		if c.Type == html.TextNode {
			sb.WriteString(c.Data)
		}
		return true
	})
	return sb.String()
}

func questionText(key string) string {
	return map[string]string{
		"questions.q.first_teacher": "first teacher",
		"questions.q.childhood_toy": "favourite toy",
		"questions.q.first_dish":    "first dish",
	}[key]
}

// TestSecurityQuestionsAsSecondMethod: with two methods required, alice
// proves her email and then answers two of her questions; wrong answers
// are counted.
func TestSecurityQuestionsAsSecondMethod(t *testing.T) {
	h, _ := questionsHarness(t)
	b := plugintest.NewBrowser(t)
	// Never alone: before the email is proved, the questions are not
	// offered and the password stays closed.
	first := b.Follow(h.start(b, "alice"))
	if strings.Contains(first.Text(), "security questions") || strings.Contains(b.Get(h.base+"/verify?flow=questions").Text(), "security questions") {
		t.Fatalf("questions offered before the contact channel: %s", first.Text())
	}
	if p := b.Get(h.base + "/password"); p.Header.Get("Location") != "/recovery/verify" {
		t.Fatalf("password page before any proof: %d", p.Status)
	}
	// The first journey's mail goes out now, so that the newest mail is
	// the second journey's (the outbox sends in parallel, in no order).
	h.deliver()
	b = plugintest.NewBrowser(t)
	after := h.emailStep(b, "alice", "alice@example.com")
	page := b.Follow(after)
	if !strings.Contains(page.Text(), "Answer your security questions") {
		t.Fatalf("questions page: %d %s", page.Status, page.Text())
	}
	bad := b.Submit(page, "/recovery/verify", askedAnswers(t, page, false))
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Text(), "At least one answer isn't right. You have 2 tries left.") {
		t.Fatalf("wrong answers: %d %s", bad.Status, bad.Text())
	}
	bad = b.Submit(bad, "/recovery/verify", askedAnswers(t, bad, false))
	if !strings.Contains(bad.Text(), "You have 1 try left.") {
		t.Fatalf("second wrong answers: %d %s", bad.Status, bad.Text())
	}
	ok := b.Submit(bad, "/recovery/verify", askedAnswers(t, bad, true))
	if ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("right answers: %d %q %s", ok.Status, ok.Header.Get("Location"), ok.Text())
	}
	if evs := h.audit("verify.questions"); len(evs) != 3 || evs[0].Outcome != "ok" || evs[1].Detail != "wrong response" {
		t.Fatalf("audit: %+v", evs)
	}
}

// TestSecurityQuestionsNeverForAdministrators: an administrator's second
// method is never a security question.
func TestSecurityQuestionsNeverForAdministrators(t *testing.T) {
	dir := adminDirectory{directory: newDirectory(), admins: map[string]bool{"u-alice": true}}
	h, _ := questionsHarness(t, func(c *plugin.Config) { c.Directory = dir })
	h.dir = dir.directory
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	if strings.Contains(page.Text(), "security questions") || !strings.Contains(page.Text(), "Contact your helpdesk") {
		t.Fatalf("administrator after email: %s", page.Text())
	}
	if p := b.Get(h.base + "/verify?flow=questions"); strings.Contains(p.Text(), "security questions") {
		t.Fatalf("asking for the questions by URL as an administrator: %s", p.Text())
	}
}

// TestSecurityQuestionsHashedOutsideWriteTransaction: the engine has the
// argon2id hashes of the answers (one per asked question, right or wrong)
// computed before it opens its write transaction, and another write on
// the same SQLite store completes while each runs: the service's other
// writes never wait for them.
func TestSecurityQuestionsHashedOutsideWriteTransaction(t *testing.T) {
	h, hashes := questionsHarness(t)
	b := plugintest.NewBrowser(t)
	page := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	hashes.reset()
	bad := b.Submit(page, "/recovery/verify", askedAnswers(t, page, false))
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Text(), "You have 2 tries left.") {
		t.Fatalf("wrong answers: %d %s", bad.Status, bad.Text())
	}
	ok := b.Submit(bad, "/recovery/verify", askedAnswers(t, bad, true))
	if ok.Header.Get("Location") != "/recovery/password" {
		t.Fatalf("right answers: %d %q %s", ok.Status, ok.Header.Get("Location"), ok.Text())
	}
	if n, in, mid := hashes.N.Load(), hashes.InTx.Load(), hashes.midWrite.Load(); n != 4 || in != 0 || mid != 4 {
		t.Fatalf("two submissions of two answers: %d argon2id, %d inside the write transaction, %d with a write completing meanwhile; want 4, 0, 4", n, in, mid)
	}
}
