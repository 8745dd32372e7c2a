package questions

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/challenge"
	"github.com/sspr-go/sspr/flows/internal/factors"
	"github.com/sspr-go/sspr/plugin/store"
)

// enrolPage is the page template of the enrolment.
const enrolPage = "enrol-questions"

// EnrolData is what the "enrol-questions" page receives as .Page.Data.
// It never holds an answer: after an error the form keeps the chosen
// questions and asks for every answer again.
type EnrolData struct {
	// Questions are the questions offered (message keys or literal text),
	// the options of each row's <select>.
	Questions []string
	// Rows are the form's rows, one per question to answer.
	Rows []EnrolRow
	// Count is the number of rows (Config.Enrol); Ask how many of them a
	// reset asks.
	Count, Ask int
	// MinLength is the least number of characters of an answer
	// (Config.MinAnswerLength); MaxLength bounds its field.
	MinLength, MaxLength int
	// Replace tells that the user has a set, which new answers replace.
	Replace bool
	// Focus is the ID of the field to focus: the first field, or the first
	// one with a problem.
	Focus string
}

// EnrolRow is one row of the enrolment form.
type EnrolRow struct {
	// Number counts the rows from 1, for their headings.
	Number int
	// QuestionField and AnswerField are the names (and IDs) of the row's
	// <select> and answer field: "question0" and "answer0", …
	QuestionField, AnswerField string
	// Question is the chosen question, kept after an error; empty at the
	// start.
	Question string
	// Error is a message key of the row's problem (it may use {n} for
	// MinLength); BadQuestion and BadAnswer tell which field has it.
	Error                  string
	BadQuestion, BadAnswer bool
}

// Enrolled lists the user's set of answers: one entry whose Count is the
// number of answers.
func (f *Flow) Enrolled(ctx context.Context, userID string) ([]flows.Enrolled, error) {
	return factors.ListCounted(ctx, f.cfg.Store, userID, ID, func(fa store.Factor) int {
		var set []json.RawMessage
		_ = json.Unmarshal(fa.Data, &set) // a corrupt set is listed, so it can be removed
		return len(set)
	})
}

// StartEnrol shows the form: Enrol rows, each a choice of question and an
// answer field. It stores nothing.
func (f *Flow) StartEnrol(ctx context.Context, r flows.EnrolRequest) (flows.EnrolPage, error) {
	d, err := f.enrolData(ctx, r.UserID)
	if err != nil {
		return flows.EnrolPage{}, err
	}
	return flows.EnrolPage{Page: enrolPage, Data: d}, nil
}

// FinishEnrol checks the form and saves the answers as the user's set,
// replacing any previous one: the old factor is deleted and the new one
// created in one [store.Store.Atomic], so a failure keeps the old set.
// The answers must be to Enrol distinct questions of the configured list,
// each at least MinAnswerLength characters after [Normalize] and at most
// [MaxAnswerBytes] bytes as typed, different from each other, and none
// may repeat its question (its key, or its text in a default catalog).
// Otherwise it returns the form again with an Error (a
// "questions.enrol.*" message key) and each row's problem, keeping the
// chosen questions but no answer.
func (f *Flow) FinishEnrol(ctx context.Context, r flows.EnrolRequest) (flows.EnrolPage, error) {
	if r.UserID == "" {
		return flows.EnrolPage{}, fmt.Errorf("questions: enrol: empty user ID")
	}
	d, err := f.enrolData(ctx, r.UserID)
	if err != nil {
		return flows.EnrolPage{}, err
	}
	normalized := make([]string, len(d.Rows))
	firstError := ""
	for i := range d.Rows {
		row := &d.Rows[i]
		row.Question = r.Form.Get(row.QuestionField)
		raw := r.Form.Get(row.AnswerField)
		normalized[i] = Normalize(raw)
		if p := f.questionProblem(d.Rows[:i], row.Question); p != "" {
			row.Error, row.BadQuestion = p, true
		} else if p := f.answerProblem(normalized[:i], row.Question, raw, normalized[i]); p != "" {
			row.Error, row.BadAnswer = p, true
		}
		if row.Error != "" && firstError == "" {
			firstError = row.Error
			d.Focus = row.AnswerField
			if row.BadQuestion {
				d.Focus = row.QuestionField
			}
		}
	}
	if firstError != "" {
		for i := range d.Rows {
			if !f.offered[d.Rows[i].Question] {
				d.Rows[i].Question = "" // never echo what was not offered
			}
		}
		return flows.EnrolPage{Page: enrolPage, Data: d, Error: firstError}, nil
	}

	// The answers are hashed before the transaction, through the
	// Hasher's bound.
	set := make([]storedAnswer, len(d.Rows))
	for i, row := range d.Rows {
		if set[i], err = f.cfg.Argon2.hashAnswer(ctx, f.cfg.Hasher, row.Question, normalized[i]); err != nil {
			return flows.EnrolPage{}, fmt.Errorf("questions: enrol: %w", err)
		}
	}
	data, err := json.Marshal(set)
	if err != nil {
		return flows.EnrolPage{}, fmt.Errorf("questions: enrol: %w", err)
	}
	fa := store.Factor{
		ID:        challenge.RandomID(),
		UserID:    r.UserID,
		Flow:      ID,
		Name:      setName,
		Data:      data,
		CreatedAt: f.cfg.Now(),
	}
	if err := factors.Replace(ctx, f.cfg.Store, r.UserID, ID, fa); err != nil {
		return flows.EnrolPage{}, fmt.Errorf("questions: enrol: %w", err)
	}
	return flows.EnrolPage{Page: enrolPage, Data: EnrolData{Count: len(set), Ask: f.cfg.Ask}, Added: true}, nil
}

// questionProblem returns the message key of what is wrong with the
// question chosen in a row, given the rows before it, or "".
func (f *Flow) questionProblem(before []EnrolRow, q string) string {
	switch {
	case q == "":
		return "questions.enrol.choose"
	case !f.offered[q]:
		return "questions.enrol.unknown"
	}
	for _, b := range before {
		if b.Question == q {
			return "questions.enrol.duplicate_question"
		}
	}
	return ""
}

// answerProblem returns the message key of what is wrong with an answer
// (raw as typed, norm normalized), given the normalized answers before
// it, or "".
func (f *Flow) answerProblem(before []string, q, raw, norm string) string {
	switch {
	case len(raw) > MaxAnswerBytes:
		return "questions.enrol.too_long"
	case utf8.RuneCountInString(norm) < f.cfg.MinAnswerLength:
		return "questions.enrol.too_short"
	}
	for _, text := range f.texts[q] {
		if repeats(norm, text) {
			return "questions.enrol.in_question"
		}
	}
	for _, b := range before {
		if b == norm {
			return "questions.enrol.same_answer"
		}
	}
	return ""
}

// enrolData returns the empty form.
func (f *Flow) enrolData(ctx context.Context, userID string) (EnrolData, error) {
	fs, err := f.cfg.Store.Factors(ctx, userID, ID)
	if err != nil {
		return EnrolData{}, fmt.Errorf("questions: enrol: %w", err)
	}
	d := EnrolData{
		Questions: slices.Clone(f.cfg.Questions),
		Rows:      make([]EnrolRow, f.cfg.Enrol),
		Count:     f.cfg.Enrol,
		Ask:       f.cfg.Ask,
		MinLength: f.cfg.MinAnswerLength,
		MaxLength: MaxAnswerBytes,
		Replace:   len(fs) > 0,
		Focus:     "question0",
	}
	for i := range d.Rows {
		n := strconv.Itoa(i)
		d.Rows[i] = EnrolRow{Number: i + 1, QuestionField: "question" + n, AnswerField: "answer" + n}
	}
	return d, nil
}

// Remove deletes the user's set of answers; a factor of another user or
// flow is [flows.ErrNoFactor].
func (f *Flow) Remove(ctx context.Context, userID, factorID string) error {
	return factors.Remove(ctx, f.cfg.Store, userID, factorID, ID)
}
