package questions_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/flows/questions"
	"github.com/sspr-go/sspr/plugin/password"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// weak are argon2id costs small enough for tests under -race.
var weak = questions.Argon2{Memory: 64, Time: 1, Threads: 1}

// answers are alice's: question key → answer as she typed it.
var answers = map[string]string{
	"questions.q.first_teacher": "Mrs. Fitzgerald",
	"questions.q.parents_met":   "Bad Tölz",
	"questions.q.first_dish":    "Spaghetti Carbonara",
}

type fixture struct {
	// st is the store, watched: it knows when a write transaction is open.
	st   *flowtest.WatchStore
	env  *flowtest.Env
	flow *questions.Flow
	// hashes counts the flow's argon2id computations, unless the test
	// gave a Hasher of its own.
	hashes *flowtest.CountingHasher
}

func setup(t *testing.T, cfg questions.Config) *fixture {
	t.Helper()
	real, err := sqlite.Config{Path: filepath.Join(t.TempDir(), "q.db")}.Open(t.Context(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { real.Close() })
	st := &flowtest.WatchStore{Store: real}
	env := flowtest.NewEnv(start)
	cfg.Store = st
	var hashes *flowtest.CountingHasher
	if cfg.Hasher == nil {
		h, err := password.NewHasher(password.HasherConfig{})
		if err != nil {
			t.Fatal(err)
		}
		hashes = &flowtest.CountingHasher{H: h, St: st}
		cfg.Hasher = hashes
	}
	if cfg.Argon2 == (questions.Argon2{}) {
		cfg.Argon2, cfg.InsecureWeakArgon2 = weak, true
	}
	if cfg.Now == nil {
		cfg.Now = env.Now
	}
	f, err := questions.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, env: env, flow: f, hashes: hashes}
}

// enrolForm returns the enrolment form for question → answer pairs, in
// the order of keys.
func enrolForm(keys []string, set map[string]string) url.Values {
	form := url.Values{}
	for i, k := range keys {
		form.Set(fmt.Sprintf("question%d", i), k)
		form.Set(fmt.Sprintf("answer%d", i), set[k])
	}
	return form
}

func (fx *fixture) finish(t *testing.T, userID string, form url.Values) flows.EnrolPage {
	t.Helper()
	page, err := fx.flow.FinishEnrol(t.Context(), flows.EnrolRequest{Env: fx.env, UserID: userID, Form: form})
	if err != nil {
		t.Fatalf("finish enrol: %v", err)
	}
	return page
}

func (fx *fixture) enrol(t *testing.T, userID string, set map[string]string) {
	t.Helper()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range set {
			if !yield(k) {
				return
			}
		}
	})
	if page := fx.finish(t, userID, enrolForm(keys, set)); !page.Added || page.Error != "" {
		t.Fatalf("enrol %s: %+v", userID, page)
	}
}

func (fx *fixture) begin(t *testing.T, journeyID string, s flows.Subject) {
	t.Helper()
	if _, err := fx.st.Journey(t.Context(), journeyID); errors.Is(err, store.ErrNotFound) {
		now := fx.env.Now()
		if err := fx.st.CreateJourney(t.Context(), store.Journey{ID: journeyID, UserID: s.UserID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		return fx.flow.Begin(t.Context(), flows.BeginRequest{Tx: tx, Env: fx.env, JourneyID: journeyID, Subject: s, Option: flows.Option{Flow: questions.ID, Ref: "set"}})
	})
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
}

func (fx *fixture) asked(t *testing.T, journeyID string) []questions.Asked {
	t.Helper()
	var data any
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		var err error
		data, err = fx.flow.PageData(t.Context(), tx, journeyID)
		return err
	})
	if err != nil {
		t.Fatalf("page data: %v", err)
	}
	asked, ok := data.([]questions.Asked)
	if !ok {
		t.Fatalf("page data is %T", data)
	}
	return asked
}

func (fx *fixture) verify(t *testing.T, journeyID string, s flows.Subject, form url.Values) error {
	t.Helper()
	var verr error
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		verr = fx.flow.Verify(t.Context(), flows.VerifyRequest{Tx: tx, Env: fx.env, JourneyID: journeyID, Subject: s, Form: form})
		return nil // the engine commits counted attempts
	})
	if err != nil {
		t.Fatal(err)
	}
	return verr
}

func (fx *fixture) challenge(t *testing.T, journeyID string) store.Challenge {
	t.Helper()
	var c store.Challenge
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		var err error
		c, err = tx.LatestChallenge(t.Context(), journeyID, questions.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// answerForm answers the asked questions from set, each through change.
func answerForm(asked []questions.Asked, set map[string]string, change func(string) string) url.Values {
	form := url.Values{}
	for _, a := range asked {
		form.Set(a.Field, change(set[a.Question]))
	}
	return form
}

func same(s string) string { return s }

func attemptsLeft(err error) int {
	var ve *flows.VerifyError
	if errors.As(err, &ve) {
		return ve.AttemptsLeft
	}
	return -1
}

func questionsOf(asked []questions.Asked) []string {
	var out []string
	for _, a := range asked {
		out = append(out, a.Question)
	}
	return out
}

func TestConfig(t *testing.T) {
	st, err := sqlite.Config{Path: filepath.Join(t.TempDir(), "c.db")}.Open(t.Context(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, tc := range []struct {
		name string
		cfg  questions.Config
		want []string
	}{
		{"defaults", questions.Config{Store: st}, nil},
		{"weak argon2 allowed when insecure", questions.Config{Store: st, Argon2: weak, InsecureWeakArgon2: true}, nil},
		{"ask all", questions.Config{Store: st, Questions: []string{"Q1?", "Q2?"}, Enrol: 2, Ask: 2}, nil},
		{"everything wrong", questions.Config{
			Questions: []string{"a", " ", "a"}, Enrol: 5, Ask: 6, MinAnswerLength: -1, MaxAttempts: 11,
			ChallengeTTL: time.Second, Argon2: questions.Argon2{Memory: 1024, Time: 1, Threads: 17},
		}, []string{
			"questions: config: field 'Store': required",
			`questions: config: field 'Questions': " ": must be 1 to 256 bytes and not blank`,
			`questions: config: field 'Questions': "a": listed twice`,
			"questions: config: field 'Enrol': must be between 2 and the number of Questions (3)",
			"questions: config: field 'Ask': must be between 1 and Enrol (5)",
			"questions: config: field 'MinAnswerLength': must be between 1 and 64",
			"questions: config: field 'MaxAttempts': must be between 1 and 10",
			"questions: config: field 'ChallengeTTL': must be between 1m0s and 1h0m0s",
			"questions: config: field 'Argon2.Threads': must be between 1 and 16",
			"questions: config: field 'Argon2.Time': must be at least 2",
		}},
		{"default Enrol needs three questions", questions.Config{Store: st, Questions: []string{"Q1?", "Q2?"}}, []string{
			"questions: config: field 'Enrol': must be between 2 and the number of Questions (2)",
		}},
		{"Enrol below 2", questions.Config{Store: st, Enrol: 1}, []string{
			"questions: config: field 'Enrol': must be between 2 and the number of Questions (8)",
			"questions: config: field 'Ask': must be between 1 and Enrol (1)",
		}},
		{"weak argon2", questions.Config{Store: st, Argon2: weak}, []string{
			"questions: config: field 'Argon2.Memory': must be at least 19456 (KiB)",
			"questions: config: field 'Argon2.Time': must be at least 2",
		}},
		{"argon2 too costly", questions.Config{Store: st, Argon2: questions.Argon2{Memory: 1 << 20, Time: 17}}, []string{
			"questions: config: field 'Argon2.Memory': must be at most 262144 (KiB)",
			"questions: config: field 'Argon2.Time': must be at most 16",
		}},
		{"argon2 memory below 8 KiB a thread", questions.Config{Store: st, Argon2: questions.Argon2{Memory: 8, Threads: 2}, InsecureWeakArgon2: true}, []string{
			"questions: config: field 'Argon2.Memory': must be at least 8 KiB per thread",
		}},
		{"question too long", questions.Config{Store: st, Questions: []string{"Q1?", "Q2?", strings.Repeat("q", 257)}}, []string{
			fmt.Sprintf("questions: config: field 'Questions': %q: must be 1 to 256 bytes and not blank", strings.Repeat("q", 257)),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := questions.New(tc.cfg)
			if tc.want == nil {
				if err != nil || f == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted a bad config")
			}
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tc.want) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}

	// New copies the questions: the caller's slice is neither kept nor
	// changed.
	qs := []string{"Q1?", "Q2?", "Q3?"}
	f, err := questions.New(questions.Config{Store: st, Questions: qs})
	if err != nil {
		t.Fatal(err)
	}
	qs[0] = "changed"
	page, err := f.StartEnrol(t.Context(), flows.EnrolRequest{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if d := page.Data.(questions.EnrolData); d.Questions[0] != "Q1?" || len(d.Rows) != 3 || d.Ask != 2 || d.MinLength != 3 {
		t.Fatalf("enrol data %+v", d)
	}
}

func TestFlowBasics(t *testing.T) {
	fx := setup(t, questions.Config{})
	if fx.flow.ID() != "questions" || fx.flow.Kind() != flows.KindKnowledge {
		t.Fatalf("ID %q, kind %v", fx.flow.ID(), fx.flow.Kind())
	}
	p := fx.flow.Prompt()
	if p.Page != "questions" || p.Heading != "questions.heading" || p.Choice != "questions.choice" || p.Section != "questions.section" || p.Add != "questions.add" || p.Autocomplete != "off" {
		t.Fatalf("prompt %+v", p)
	}
	if got := questions.DefaultQuestions(); len(got) != 8 {
		t.Fatalf("%d default questions", len(got))
	}

	opts, err := fx.flow.Options(t.Context(), flows.Subject{UserID: "alice"})
	if err != nil || len(opts) != 0 {
		t.Fatalf("options without a set: %v %v", opts, err)
	}
	fx.enrol(t, "alice", answers)
	opts, err = fx.flow.Options(t.Context(), flows.Subject{UserID: "alice"})
	if err != nil || len(opts) != 1 || opts[0].Flow != questions.ID || opts[0].Hint != "questions.choice" {
		t.Fatalf("options: %v %v", opts, err)
	}
	if opts, err := fx.flow.Options(t.Context(), flows.Subject{}); err != nil || len(opts) != 0 {
		t.Fatalf("decoy options: %v %v", opts, err)
	}
}

func TestEnrolValidation(t *testing.T) {
	const (
		q1 = "questions.q.first_teacher"
		q2 = "questions.q.parents_met"
		q3 = "questions.q.first_dish"
	)
	good := []string{"Fitzgerald", "Bad Tölz", "Carbonara"}
	form := func(qs, as []string) url.Values {
		f := url.Values{}
		for i := range qs {
			f.Set(fmt.Sprintf("question%d", i), qs[i])
		}
		for i := range as {
			f.Set(fmt.Sprintf("answer%d", i), as[i])
		}
		return f
	}
	for _, tc := range []struct {
		name    string
		form    url.Values
		want    string
		row     int
		onQ     bool
		kept    []string
		focused string
	}{
		{"no question", form([]string{q1, "", q3}, good), "questions.enrol.choose", 1, true, []string{q1, "", q3}, "question1"},
		{"question not offered", form([]string{q1, q2, "Whose <b>car</b>?"}, good), "questions.enrol.unknown", 2, true, []string{q1, q2, ""}, "question2"},
		{"same question twice", form([]string{q1, q2, q1}, good), "questions.enrol.duplicate_question", 2, true, []string{q1, q2, q1}, "question2"},
		{"answer missing", form([]string{q1, q2, q3}, good[:2]), "questions.enrol.too_short", 2, false, []string{q1, q2, q3}, "answer2"},
		{"answer too short after normalizing", form([]string{q1, q2, q3}, []string{"A.B.", good[1], good[2]}), "questions.enrol.too_short", 0, false, []string{q1, q2, q3}, "answer0"},
		{"answer too long", form([]string{q1, q2, q3}, []string{good[0], strings.Repeat("x", 257), good[2]}), "questions.enrol.too_long", 1, false, []string{q1, q2, q3}, "answer1"},
		{"answers the same", form([]string{q1, q2, q3}, []string{"Fitzgerald", good[1], "FITZ-GERALD"}), "questions.enrol.same_answer", 2, false, []string{q1, q2, q3}, "answer2"},
		{"answer repeats the key", form([]string{q1, q2, q3}, []string{"First Teacher", good[1], good[2]}), "questions.enrol.in_question", 0, false, []string{q1, q2, q3}, "answer0"},
		{"answer repeats the English text", form([]string{q1, q2, q3}, []string{good[0], "Your parents", good[2]}), "questions.enrol.in_question", 1, false, []string{q1, q2, q3}, "answer1"},
		{"answer repeats the German text", form([]string{q1, q2, q3}, []string{good[0], good[1], "Gericht"}), "questions.enrol.in_question", 2, false, []string{q1, q2, q3}, "answer2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := setup(t, questions.Config{})
			page := fx.finish(t, "alice", tc.form)
			if page.Added || page.Error != tc.want || page.Page != "enrol-questions" {
				t.Fatalf("page %+v, want error %s", page, tc.want)
			}
			d, ok := page.Data.(questions.EnrolData)
			if !ok {
				t.Fatalf("data %T", page.Data)
			}
			var kept []string
			for i, r := range d.Rows {
				kept = append(kept, r.Question)
				if i == tc.row {
					if r.Error != tc.want || r.BadQuestion != tc.onQ || r.BadAnswer == tc.onQ {
						t.Fatalf("row %d: %+v", i, r)
					}
				} else if r.Error != "" {
					t.Fatalf("row %d has an error too: %+v", i, r)
				}
			}
			if !slices.Equal(kept, tc.kept) || d.Focus != tc.focused {
				t.Fatalf("kept %q, focus %q", kept, d.Focus)
			}
			// No answer comes back to the page.
			shown := fmt.Sprintf("%+v", page)
			for _, vs := range tc.form {
				for _, v := range vs {
					if v == "" || strings.HasPrefix(v, "questions.q.") {
						continue
					}
					if strings.Contains(shown, v) {
						t.Fatalf("page echoes %q: %s", v, shown)
					}
				}
			}
			fs, err := fx.st.Factors(t.Context(), "alice", questions.ID)
			if err != nil || len(fs) != 0 {
				t.Fatalf("stored %d factors: %v", len(fs), err)
			}
		})
	}
}

func TestEnrolStoresNoClearAnswers(t *testing.T) {
	fx := setup(t, questions.Config{})
	page, err := fx.flow.StartEnrol(t.Context(), flows.EnrolRequest{Env: fx.env, UserID: "alice"})
	if err != nil || page.Page != "enrol-questions" || page.Data.(questions.EnrolData).Replace {
		t.Fatalf("start: %+v %v", page, err)
	}
	fx.enrol(t, "alice", answers)

	fs, err := fx.st.Factors(t.Context(), "alice", questions.ID)
	if err != nil || len(fs) != 1 {
		t.Fatalf("%d factors: %v", len(fs), err)
	}
	fa := fs[0]
	if fa.Name != "questions.enrolled_name" || !fa.CreatedAt.Equal(start) || len(fa.Secret) != 0 {
		t.Fatalf("factor %+v", fa)
	}
	var set []struct {
		Q       string `json:"q"`
		Salt    []byte `json:"salt"`
		Hash    []byte `json:"hash"`
		M, T, P int
	}
	if err := json.Unmarshal(fa.Data, &set); err != nil || len(set) != 3 {
		t.Fatalf("data %s: %v", fa.Data, err)
	}
	salts := map[string]bool{}
	for _, a := range set {
		if _, ok := answers[a.Q]; !ok || len(a.Salt) != 16 || len(a.Hash) != 32 || a.M != 64 || a.T != 1 || a.P != 1 {
			t.Fatalf("entry %+v", a)
		}
		salts[string(a.Salt)] = true
	}
	if len(salts) != 3 {
		t.Fatal("salts repeat")
	}
	for _, ans := range answers {
		for _, form := range []string{ans, questions.Normalize(ans), strings.ToLower(ans)} {
			for _, field := range [][]byte{[]byte(fa.ID), []byte(fa.Name), fa.Secret, fa.Data} {
				if bytes.Contains(field, []byte(form)) {
					t.Fatalf("answer %q stored in clear: %s", form, field)
				}
			}
		}
	}

	list, err := fx.flow.Enrolled(t.Context(), "alice")
	if err != nil || len(list) != 1 || list[0].ID != fa.ID || list[0].Count != 3 || list[0].Name != "questions.enrolled_name" {
		t.Fatalf("enrolled %+v: %v", list, err)
	}
	page, err = fx.flow.StartEnrol(t.Context(), flows.EnrolRequest{Env: fx.env, UserID: "alice"})
	if err != nil || !page.Data.(questions.EnrolData).Replace {
		t.Fatalf("start with a set: %+v %v", page, err)
	}
}

func TestVerify(t *testing.T) {
	fx := setup(t, questions.Config{})
	alice := flows.Subject{UserID: "alice"}
	fx.enrol(t, alice.UserID, answers)
	fx.begin(t, "j1", alice)
	asked := fx.asked(t, "j1")
	if len(asked) != 2 || asked[0].Field != "answer0" || asked[1].Field != "answer1" || asked[0].Question == asked[1].Question {
		t.Fatalf("asked %+v", asked)
	}
	for _, a := range asked {
		if _, ok := answers[a.Question]; !ok {
			t.Fatalf("asked %q, not one of alice's questions", a.Question)
		}
	}
	fx.env.Advance(time.Minute)
	// Case, spacing and punctuation do not matter.
	messy := func(s string) string { return "  " + strings.ToUpper(strings.ReplaceAll(s, " ", "   ")) + "!! " }
	if err := fx.verify(t, "j1", alice, answerForm(asked, answers, messy)); err != nil {
		t.Fatalf("right answers: %v", err)
	}
	// Accepted once.
	if err := fx.verify(t, "j1", alice, answerForm(asked, answers, same)); !errors.Is(err, flows.ErrUsed) {
		t.Fatalf("second verify: %v", err)
	}
	list, err := fx.flow.Enrolled(t.Context(), alice.UserID)
	if err != nil || len(list) != 1 || !list[0].LastUsedAt.Equal(start.Add(time.Minute)) {
		t.Fatalf("last used not recorded: %+v %v", list, err)
	}
}

func TestWrongAnswers(t *testing.T) {
	fx := setup(t, questions.Config{})
	alice := flows.Subject{UserID: "alice"}
	fx.enrol(t, alice.UserID, answers)
	fx.begin(t, "j1", alice)
	asked := fx.asked(t, "j1")

	// One wrong answer makes the submission wrong; it counts once.
	oneWrong := answerForm(asked, answers, same)
	oneWrong.Set(asked[1].Field, "Nope")
	if err := fx.verify(t, "j1", alice, oneWrong); !errors.Is(err, flows.ErrWrongResponse) || attemptsLeft(err) != 2 {
		t.Fatalf("first wrong: %v", err)
	}
	// A missing answer is wrong too.
	missing := answerForm(asked, answers, same)
	missing.Del(asked[0].Field)
	if err := fx.verify(t, "j1", alice, missing); !errors.Is(err, flows.ErrWrongResponse) || attemptsLeft(err) != 1 {
		t.Fatalf("missing answer: %v", err)
	}
	// All blank is malformed and not counted.
	if err := fx.verify(t, "j1", alice, url.Values{asked[0].Field: {"  "}}); !errors.Is(err, flows.ErrMalformed) {
		t.Fatalf("blank: %v", err)
	}
	if c := fx.challenge(t, "j1"); c.Attempts != 2 {
		t.Fatalf("attempts %d", c.Attempts)
	}
	// Choosing the method again keeps the challenge and its count.
	id := fx.challenge(t, "j1").ID
	fx.begin(t, "j1", alice)
	if c := fx.challenge(t, "j1"); c.ID != id || c.Attempts != 2 {
		t.Fatalf("begin again: %+v", c)
	}
	// An over-long answer is simply wrong, and the last attempt exhausts
	// the challenge.
	long := answerForm(asked, answers, same)
	long.Set(asked[0].Field, answers[asked[0].Question]+strings.Repeat(" ", questions.MaxAnswerBytes))
	if err := fx.verify(t, "j1", alice, long); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("third wrong: %v", err)
	}
	// Exhausted: even the right answers no longer work, nor after
	// beginning again or after expiry.
	if err := fx.verify(t, "j1", alice, answerForm(asked, answers, same)); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("right answers after exhaustion: %v", err)
	}
	fx.env.Advance(time.Hour)
	fx.begin(t, "j1", alice)
	if err := fx.verify(t, "j1", alice, answerForm(asked, answers, same)); !errors.Is(err, flows.ErrExhausted) {
		t.Fatalf("right answers after expiry and a new begin: %v", err)
	}
}

func TestSameQuestionsPerJourney(t *testing.T) {
	fx := setup(t, questions.Config{MaxAttempts: 5})
	alice := flows.Subject{UserID: "alice"}
	fx.enrol(t, alice.UserID, answers)
	fx.begin(t, "j1", alice)
	first := questionsOf(fx.asked(t, "j1"))
	wrong := url.Values{"answer0": {"nope"}, "answer1": {"nope"}}
	if err := fx.verify(t, "j1", alice, wrong); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatal(err)
	}

	// After expiry a new challenge asks the same questions and keeps the
	// count.
	fx.env.Advance(11 * time.Minute)
	if err := fx.verify(t, "j1", alice, wrong); !errors.Is(err, flows.ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	old := fx.challenge(t, "j1").ID
	fx.begin(t, "j1", alice)
	c := fx.challenge(t, "j1")
	if c.ID == old || c.Attempts != 1 {
		t.Fatalf("after expiry: %+v", c)
	}
	if got := questionsOf(fx.asked(t, "j1")); !slices.Equal(got, first) {
		t.Fatalf("after expiry asked %q, first %q", got, first)
	}
	// After a success (a second reset step, say) too.
	if err := fx.verify(t, "j1", alice, answerForm(fx.asked(t, "j1"), answers, same)); err != nil {
		t.Fatal(err)
	}
	fx.begin(t, "j1", alice)
	if got := questionsOf(fx.asked(t, "j1")); !slices.Equal(got, first) {
		t.Fatalf("after success asked %q, first %q", got, first)
	}

	// Across journeys the choice varies (3 possible pairs).
	seen := map[string]bool{}
	for i := range 20 {
		j := fmt.Sprintf("v%d", i)
		fx.begin(t, j, alice)
		qs := questionsOf(fx.asked(t, j))
		if len(qs) != 2 || qs[0] == qs[1] {
			t.Fatalf("journey %s asked %q", j, qs)
		}
		seen[strings.Join(qs, ",")] = true
	}
	if len(seen) < 2 {
		t.Fatalf("20 journeys were all asked %v", seen)
	}

	// The choice depends on the journey and the key, not on stored state:
	// another store, in which alice enrolled the same questions later,
	// asks the same ones in a journey of the same ID.
	other := setup(t, questions.Config{MaxAttempts: 5})
	other.env.Advance(time.Hour)
	other.enrol(t, alice.UserID, answers)
	for _, j := range []string{"j1", "v7"} {
		want := first
		if j != "j1" {
			want = questionsOf(fx.asked(t, j))
		}
		other.begin(t, j, alice)
		if got := questionsOf(other.asked(t, j)); !slices.Equal(got, want) {
			t.Fatalf("journey %s: asked %q in one store, %q in the other", j, want, got)
		}
	}
}

func TestDecoy(t *testing.T) {
	fx := setup(t, questions.Config{})
	fx.enrol(t, "alice", answers)
	decoy := flows.Subject{}
	fx.begin(t, "d1", decoy)
	asked := fx.asked(t, "d1")
	if len(asked) != 2 {
		t.Fatalf("decoy asked %+v", asked)
	}
	for _, a := range asked {
		if !slices.Contains(questions.DefaultQuestions(), a.Question) {
			t.Fatalf("decoy asked %q", a.Question)
		}
	}
	// Whatever the answers (alice's included), a decoy never verifies.
	orGuess := func(s string) string { return cmp.Or(s, "a guess") }
	for i, form := range []url.Values{
		answerForm(asked, answers, orGuess),
		{"answer0": {"Fitzgerald"}, "answer1": {"Bad Tölz"}},
		{"answer0": {"x"}, "answer1": {""}},
	} {
		err := fx.verify(t, "d1", decoy, form)
		if i < 2 && (!errors.Is(err, flows.ErrWrongResponse) || attemptsLeft(err) != 2-i) {
			t.Fatalf("decoy verify %d: %v", i, err)
		}
		if i == 2 && !errors.Is(err, flows.ErrExhausted) {
			t.Fatalf("decoy verify %d: %v", i, err)
		}
	}
	// A user without a set is treated alike.
	bob := flows.Subject{UserID: "bob"}
	fx.begin(t, "b1", bob)
	if err := fx.verify(t, "b1", bob, answerForm(fx.asked(t, "b1"), answers, orGuess)); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("user without a set: %v", err)
	}
}

func TestOtherUsersAnswers(t *testing.T) {
	fx := setup(t, questions.Config{Questions: []string{"Q1?", "Q2?", "Q3?"}, Ask: 3})
	aliceSet := map[string]string{"Q1?": "red fox", "Q2?": "blue whale", "Q3?": "green frog"}
	bobSet := map[string]string{"Q1?": "grey wolf", "Q2?": "white owl", "Q3?": "black cat"}
	fx.enrol(t, "alice", aliceSet)
	fx.enrol(t, "bob", bobSet)
	bob := flows.Subject{UserID: "bob"}
	fx.begin(t, "j1", bob)
	asked := fx.asked(t, "j1")
	if len(asked) != 3 {
		t.Fatalf("asked %+v", asked)
	}
	if err := fx.verify(t, "j1", bob, answerForm(asked, aliceSet, same)); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("alice's answers for bob: %v", err)
	}
	if err := fx.verify(t, "j1", bob, answerForm(asked, bobSet, same)); err != nil {
		t.Fatalf("bob's answers: %v", err)
	}
}

func TestReplaceAndRemove(t *testing.T) {
	fx := setup(t, questions.Config{Questions: []string{"Q1?", "Q2?", "Q3?"}, Ask: 3})
	old := map[string]string{"Q1?": "red fox", "Q2?": "blue whale", "Q3?": "green frog"}
	fresh := map[string]string{"Q1?": "grey wolf", "Q2?": "white owl", "Q3?": "black cat"}
	alice := flows.Subject{UserID: "alice"}
	fx.enrol(t, alice.UserID, old)
	fx.enrol(t, alice.UserID, fresh)
	list, err := fx.flow.Enrolled(t.Context(), alice.UserID)
	if err != nil || len(list) != 1 || list[0].Count != 3 || list[0].Name != "questions.enrolled_name" {
		t.Fatalf("after replacing: %+v %v", list, err)
	}
	fx.begin(t, "j1", alice)
	asked := fx.asked(t, "j1")
	if err := fx.verify(t, "j1", alice, answerForm(asked, old, same)); !errors.Is(err, flows.ErrWrongResponse) {
		t.Fatalf("old answers: %v", err)
	}
	if err := fx.verify(t, "j1", alice, answerForm(asked, fresh, same)); err != nil {
		t.Fatalf("new answers: %v", err)
	}

	fx.enrol(t, "bob", old)
	bobList, err := fx.flow.Enrolled(t.Context(), "bob")
	if err != nil || len(bobList) != 1 {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, user, id string }{
		{"another user's set", alice.UserID, bobList[0].ID},
		{"no such factor", alice.UserID, "nope"},
	} {
		if err := fx.flow.Remove(t.Context(), tc.user, tc.id); !errors.Is(err, flows.ErrNoFactor) {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	if err := fx.flow.Remove(t.Context(), alice.UserID, list[0].ID); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if opts, err := fx.flow.Options(t.Context(), alice); err != nil || len(opts) != 0 {
		t.Fatalf("options after remove: %v %v", opts, err)
	}
	if l, err := fx.flow.Enrolled(t.Context(), "bob"); err != nil || len(l) != 1 {
		t.Fatalf("bob's set: %v %v", l, err)
	}
}

func TestPageData(t *testing.T) {
	fx := setup(t, questions.Config{})
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		_, err := fx.flow.PageData(t.Context(), tx, "none")
		return err
	})
	if !errors.Is(err, flows.ErrNoChallenge) {
		t.Fatalf("no challenge: %v", err)
	}
	alice := flows.Subject{UserID: "alice"}
	fx.enrol(t, alice.UserID, answers)
	fx.begin(t, "j1", alice)
	asked := fx.asked(t, "j1")
	shown, err := json.Marshal(asked)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := fx.st.Factors(t.Context(), alice.UserID, questions.ID)
	if err != nil {
		t.Fatal(err)
	}
	var set []struct {
		Salt, Hash []byte
	}
	if err := json.Unmarshal(fs[0].Data, &set); err != nil {
		t.Fatal(err)
	}
	for _, a := range set {
		for _, secret := range [][]byte{a.Salt, a.Hash} {
			if bytes.Contains(shown, secret) || bytes.Contains(shown, []byte(fmt.Sprintf("%x", secret))) {
				t.Fatalf("page data %s shows a salt or hash", shown)
			}
		}
	}
	for _, ans := range answers {
		if bytes.Contains(bytes.ToLower(shown), []byte(questions.Normalize(ans))) {
			t.Fatalf("page data %s shows an answer", shown)
		}
	}
	if strings.Count(string(shown), `"Field"`) != 2 {
		t.Fatalf("page data %s", shown)
	}
}

func TestCorruptSet(t *testing.T) {
	fx := setup(t, questions.Config{})
	alice := flows.Subject{UserID: "alice"}
	data := fmt.Sprintf(`[{"q":"questions.q.first_teacher","salt":%q,"hash":%q,"m":4194304,"t":1,"p":1}]`,
		"AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	if err := fx.st.CreateFactor(t.Context(), store.Factor{ID: "f1", UserID: "alice", Flow: questions.ID, Name: "x", Data: []byte(data), CreatedAt: start}); err != nil {
		t.Fatal(err)
	}
	// Begin refuses the set instead of hashing with 4 GiB.
	if err := fx.st.CreateJourney(t.Context(), store.Journey{ID: "j1", UserID: "alice", CreatedAt: start, ExpiresAt: start.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	err := fx.st.Atomic(t.Context(), func(tx store.Tx) error {
		return fx.flow.Begin(t.Context(), flows.BeginRequest{Tx: tx, Env: fx.env, JourneyID: "j1", Subject: alice})
	})
	if err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("begin with a corrupt set: %v", err)
	}
	// It is still listed, so the user can remove it.
	if l, err := fx.flow.Enrolled(t.Context(), "alice"); err != nil || len(l) != 1 {
		t.Fatalf("enrolled: %v %v", l, err)
	}
}
