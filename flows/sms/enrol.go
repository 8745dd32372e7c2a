package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/challenge"
	"github.com/sspr-go/sspr/flows/internal/factors"
	"github.com/sspr-go/sspr/flows/internal/otpcode"
	"github.com/sspr-go/sspr/plugin/store"
)

// Steps of the "enrol-sms" page ([EnrolData.Step]).
const (
	// StepNumber asks for the phone number.
	StepNumber = "number"
	// StepCode asks for the code texted to it.
	StepCode = "code"
	// StepAdded reports the number added.
	StepAdded = "added"
)

// enrolJourneyPrefix starts the JourneyID of an enrolment's challenge:
// enrolments have no journey, and no journey ID has this form.
const enrolJourneyPrefix = "enrol:"

// EnrolData is what the "enrol-sms" page receives as .Page.Data.
type EnrolData struct {
	// Step is the step to show: [StepNumber], [StepCode] or [StepAdded].
	Step string
	// Phone is what the user typed, kept after an error (StepNumber).
	Phone string
	// Hint is a message key explaining how to type a number; it takes
	// {prefix}.
	Hint string
	// Prefix is the country code of Config.DefaultRegion ("+49"), or "".
	Prefix string
	// Number is the number being added, formatted for its owner to read
	// (StepCode), or the masked number just added (StepAdded).
	Number string
	// CodeLength and Minutes describe the texted code; MaxLength bounds
	// the code field.
	CodeLength, Minutes, MaxLength int
	// TriesLeft is how many more wrong codes are accepted, after a wrong
	// one (0 otherwise).
	TriesLeft int
	// Notice is a message key of good news ("sms.enrol.resent"), or "".
	Notice string
}

// enrolState is what an enrolment carries from the number step to the
// code step, in EnrolPage.State (the engine seals it).
type enrolState struct {
	V         int    `json:"v"`
	Challenge string `json:"c"`
	Number    string `json:"n"`
}

const enrolStateVersion = 1

func parseEnrolState(b []byte) (enrolState, bool) {
	var s enrolState
	if len(b) > 1024 || json.Unmarshal(b, &s) != nil || s.V != enrolStateVersion || s.Challenge == "" || !isE164(s.Number) {
		return enrolState{}, false
	}
	return s, true
}

// Enrolled lists the phone numbers the user enrolled here (masked). It
// does not list the numbers the host verified.
func (f *Flow) Enrolled(ctx context.Context, userID string) ([]flows.Enrolled, error) {
	return factors.List(ctx, f.cfg.Store, userID, ID)
}

// StartEnrol asks for a phone number, or says that the user has
// MaxNumbers already. It stores nothing.
func (f *Flow) StartEnrol(ctx context.Context, r flows.EnrolRequest) (flows.EnrolPage, error) {
	fs, err := f.cfg.Store.Factors(ctx, r.UserID, ID)
	if err != nil {
		return flows.EnrolPage{}, fmt.Errorf("sms: enrol: %w", err)
	}
	if len(fs) >= f.cfg.MaxNumbers {
		return withError(f.numberPage(""), "sms.enrol.too_many"), nil
	}
	return f.numberPage(""), nil
}

// FinishEnrol handles both steps of adding a phone number.
//
// Without State it reads the form field "phone" ([Normalize] with
// Config.DefaultRegion), refuses a number the user has enrolled already or
// one more than MaxNumbers, and otherwise creates a challenge and queues
// the "enrol" message with a code to the number, in one transaction; the
// page then asks for the code, with the challenge and number in State.
//
// With State it checks the form field "code" against that challenge: a
// wrong code is counted (MaxAttempts), an expired, used or exhausted
// challenge sends the user back to the number step, and a right one
// stores the number, sealed and bound to the user and factor, unless it
// is enrolled already. The form field "resend" asks for a new code
// instead (MaxResends). The State may be replayed: the challenge is single
// use, and its code is bound to the user, the challenge and the number.
func (f *Flow) FinishEnrol(ctx context.Context, r flows.EnrolRequest) (flows.EnrolPage, error) {
	if r.UserID == "" {
		return flows.EnrolPage{}, errors.New("sms: enrol: empty user ID")
	}
	if r.State == nil {
		if !r.Form.Has("phone") {
			// A code for a state the engine could not open (an old key,
			// another user): start over.
			return withError(f.numberPage(""), "sms.enrol.expired"), nil
		}
		return f.sendEnrolCode(ctx, r)
	}
	st, ok := parseEnrolState(r.State)
	if !ok {
		return withError(f.numberPage(""), "sms.enrol.expired"), nil
	}
	if r.Form.Has("resend") {
		return f.resendEnrolCode(ctx, r, st)
	}
	return f.confirmEnrol(ctx, r, st)
}

// sendEnrolCode starts the code step for the number in the form.
func (f *Flow) sendEnrolCode(ctx context.Context, r flows.EnrolRequest) (flows.EnrolPage, error) {
	phone := r.Form.Get("phone")
	keep := phone
	if len(keep) > MaxInputLength {
		keep = ""
	}
	number, err := Normalize(phone, f.cfg.DefaultRegion)
	switch {
	case errors.Is(err, ErrNotMobile):
		return withError(f.numberPage(keep), "sms.enrol.not_mobile"), nil
	case err != nil:
		return withError(f.numberPage(keep), "sms.enrol.invalid_number"), nil
	}
	code, err := otpcode.Random(f.cfg.CodeLength)
	if err != nil {
		return flows.EnrolPage{}, fmt.Errorf("sms: enrol: %w", err)
	}
	now := f.cfg.Now()
	var refused string
	c := store.Challenge{
		ID:          challenge.RandomID(),
		JourneyID:   enrolJourneyPrefix + challenge.RandomID(),
		Flow:        ID,
		MaxAttempts: f.cfg.MaxAttempts,
		CreatedAt:   now,
		ExpiresAt:   now.Add(f.cfg.CodeTTL),
	}
	c.CodeHash = r.Env.MAC(macEnrolCode, enrolCodeParts(r.UserID, c.ID, number, code)...)
	err = f.cfg.Store.Atomic(ctx, func(tx store.Tx) error {
		var err error
		if refused, err = f.refuse(ctx, tx, r.UserID, number); err != nil || refused != "" {
			return err
		}
		if err := tx.CreateChallenge(ctx, c); err != nil {
			return err
		}
		return r.Env.Queue(ctx, tx, flows.Message{Template: "enrol", Channel: ID, To: number, Locale: r.Locale, Data: f.codeData(r.Env, code)})
	})
	if err != nil {
		return flows.EnrolPage{}, fmt.Errorf("sms: enrol: %w", err)
	}
	if refused != "" {
		return withError(f.numberPage(keep), refused), nil
	}
	return f.codePage(enrolState{V: enrolStateVersion, Challenge: c.ID, Number: number})
}

// refuse returns the message key that says why userID cannot enrol
// number (enrolled already, or MaxNumbers reached), or "".
func (f *Flow) refuse(ctx context.Context, tx store.FactorStore, userID, number string) (string, error) {
	enrolled, err := f.enrolled(ctx, tx, userID)
	if err != nil {
		return "", err
	}
	for _, p := range enrolled {
		// Sealed values are randomized: compare the numbers.
		if p.number == number {
			return "sms.enrol.duplicate", nil
		}
	}
	if len(enrolled) >= f.cfg.MaxNumbers {
		return "sms.enrol.too_many", nil
	}
	return "", nil
}

// resendEnrolCode texts a new code for the enrolment in st.
func (f *Flow) resendEnrolCode(ctx context.Context, r flows.EnrolRequest, st enrolState) (flows.EnrolPage, error) {
	code, err := otpcode.Random(f.cfg.CodeLength)
	if err != nil {
		return flows.EnrolPage{}, fmt.Errorf("sms: enrol: %w", err)
	}
	now := f.cfg.Now()
	var msg string
	err = f.cfg.Store.Atomic(ctx, func(tx store.Tx) error {
		c, err := tx.Challenge(ctx, st.Challenge)
		switch {
		case errors.Is(err, store.ErrNotFound):
			msg = "sms.enrol.expired"
			return nil
		case err != nil:
			return err
		case c.Flow != ID || !strings.HasPrefix(c.JourneyID, enrolJourneyPrefix) || !c.UsedAt.IsZero():
			msg = "sms.enrol.expired"
			return nil
		case c.Attempts >= c.MaxAttempts:
			msg = "sms.enrol.exhausted"
			return nil
		}
		_, err = tx.ReissueChallenge(ctx, c.ID, nil, r.Env.MAC(macEnrolCode, enrolCodeParts(r.UserID, c.ID, st.Number, code)...), now.Add(f.cfg.CodeTTL), f.cfg.MaxResends)
		switch {
		case errors.Is(err, store.ErrExhausted):
			msg = "sms.enrol.resend_limit"
			return nil
		case errors.Is(err, store.ErrUsed), errors.Is(err, store.ErrNotFound):
			msg = "sms.enrol.expired"
			return nil
		case err != nil:
			return err
		}
		return r.Env.Queue(ctx, tx, flows.Message{Template: "enrol", Channel: ID, To: st.Number, Locale: r.Locale, Data: f.codeData(r.Env, code)})
	})
	if err != nil {
		return flows.EnrolPage{}, fmt.Errorf("sms: enrol: resend: %w", err)
	}
	switch msg {
	case "":
		page, err := f.codePage(st)
		if d, ok := page.Data.(EnrolData); ok {
			d.Notice = "sms.enrol.resent"
			page.Data = d
		}
		return page, err
	case "sms.enrol.resend_limit":
		page, err := f.codePage(st)
		return withError(page, msg), err
	}
	return withError(f.numberPage(""), msg), nil
}

// confirmEnrol checks the code for the enrolment in st and, if right,
// stores the number.
func (f *Flow) confirmEnrol(ctx context.Context, r flows.EnrolRequest, st enrolState) (flows.EnrolPage, error) {
	code, ok := otpcode.Normalize(r.Form.Get("code"), f.cfg.CodeLength)
	if !ok {
		page, err := f.codePage(st)
		return withError(page, "sms.enrol.malformed"), err
	}
	now := f.cfg.Now()
	var msg string
	left := 0
	err := f.cfg.Store.Atomic(ctx, func(tx store.Tx) error {
		// A wrong code must be counted, so every outcome below commits.
		c, err := tx.Challenge(ctx, st.Challenge)
		if err == nil {
			_, err = otpcode.Consume(ctx, tx, c, r.Env.MACs(macEnrolCode, enrolCodeParts(r.UserID, st.Challenge, st.Number, code)...), now)
		}
		var ve *flows.VerifyError
		switch {
		case errors.As(err, &ve):
			if left = ve.AttemptsLeft; errors.Is(ve.Err, flows.ErrExhausted) {
				msg = "sms.enrol.exhausted"
			} else {
				msg = "sms.enrol.wrong_code"
			}
			return nil
		case errors.Is(err, store.ErrExhausted):
			msg = "sms.enrol.exhausted"
			return nil
		case errors.Is(err, store.ErrExpired), errors.Is(err, store.ErrUsed), errors.Is(err, store.ErrNotFound):
			msg = "sms.enrol.expired"
			return nil
		case err != nil:
			return err
		}
		if msg, err = f.refuse(ctx, tx, r.UserID, st.Number); err != nil || msg != "" {
			return err
		}
		id := challenge.RandomID()
		return tx.CreateFactor(ctx, store.Factor{
			ID:        id,
			UserID:    r.UserID,
			Flow:      ID,
			Name:      Mask(st.Number),
			Secret:    f.sealer.Seal([]byte(st.Number), sealAD(r.UserID, id)),
			CreatedAt: now,
		})
	})
	if err != nil {
		return flows.EnrolPage{}, fmt.Errorf("sms: enrol: confirm: %w", err)
	}
	switch msg {
	case "":
		return flows.EnrolPage{Page: "enrol-sms", Data: EnrolData{Step: StepAdded, Number: Mask(st.Number)}, Added: true}, nil
	case "sms.enrol.wrong_code":
		page, err := f.codePage(st)
		if d, ok := page.Data.(EnrolData); ok {
			d.TriesLeft = left
			page.Data = d
		}
		return withError(page, msg), err
	}
	return withError(f.numberPage(""), msg), nil
}

// enrolCodeParts are what an enrolment code's keyed hash (macEnrolCode)
// binds it to: the user, the challenge and the number.
func enrolCodeParts(userID, challengeID, number, code string) [][]byte {
	return [][]byte{[]byte(userID), []byte(challengeID), []byte(number), []byte(code)}
}

// numberPage is the number step, with phone typed already.
func (f *Flow) numberPage(phone string) flows.EnrolPage {
	d := EnrolData{Step: StepNumber, Phone: phone, Hint: "sms.enrol.phone_hint", CodeLength: f.cfg.CodeLength, Minutes: int(f.cfg.CodeTTL.Minutes()), MaxLength: 4 * f.cfg.CodeLength}
	if f.cfg.DefaultRegion != "" {
		d.Hint = "sms.enrol.phone_hint_region"
		d.Prefix = fmt.Sprintf("+%d", phonenumbers.GetCountryCodeForRegion(f.cfg.DefaultRegion))
	}
	return flows.EnrolPage{Page: "enrol-sms", Data: d}
}

// codePage is the code step of the enrolment in st.
func (f *Flow) codePage(st enrolState) (flows.EnrolPage, error) {
	state, err := json.Marshal(st)
	if err != nil {
		return flows.EnrolPage{}, fmt.Errorf("sms: enrol: %w", err)
	}
	return flows.EnrolPage{
		Page:  "enrol-sms",
		Data:  EnrolData{Step: StepCode, Number: display(st.Number), CodeLength: f.cfg.CodeLength, Minutes: int(f.cfg.CodeTTL.Minutes()), MaxLength: 4 * f.cfg.CodeLength},
		State: state,
	}, nil
}

// withError returns p with the error message key msg.
func withError(p flows.EnrolPage, msg string) flows.EnrolPage {
	p.Error = msg
	return p
}

// Remove deletes one of the user's enrolled phone numbers.
func (f *Flow) Remove(ctx context.Context, userID, factorID string) error {
	return factors.Remove(ctx, f.cfg.Store, userID, factorID, ID)
}
