package webauthn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html/template"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/factors"
	"github.com/sspr-go/sspr/plugin/store"
)

var _ flows.Enroller = (*Flow)(nil)

// EnrolData is what the "enrol-webauthn" page receives as .Page.Data.
type EnrolData struct {
	// Options is the creation options JSON for the page's script.
	Options template.JS
	// Name is the label the user typed, kept after an error.
	Name string
	// Added is the label of the passkey just added.
	Added string
}

// Enrolled lists the user's passkeys.
func (f *Flow) Enrolled(ctx context.Context, userID string) ([]flows.Enrolled, error) {
	return factors.List(ctx, f.cfg.Store, userID, ID)
}

// StartEnrol begins a registration ceremony. Its session travels in the
// page's sealed state; FinishEnrol enforces its expiry, and the
// credential's uniqueness makes a replayed registration fail.
func (f *Flow) StartEnrol(ctx context.Context, r flows.EnrolRequest) (flows.EnrolPage, error) {
	opts, sess, err := f.BeginRegistration(ctx, r.UserID, r.Account, r.DisplayName)
	if err != nil {
		return flows.EnrolPage{}, err
	}
	return flows.EnrolPage{Page: "enrol-webauthn", Data: EnrolData{Options: template.JS(safeJSON(opts))}, State: sess}, nil
}

// FinishEnrol verifies the authenticator's attestation and stores the
// passkey.
func (f *Flow) FinishEnrol(ctx context.Context, r flows.EnrolRequest) (flows.EnrolPage, error) {
	label := r.Form.Get("name")
	fa, err := f.FinishRegistration(ctx, f.cfg.Store, r.UserID, r.State, []byte(r.Form.Get("attestation")), label, f.cfg.Now())
	var msg string
	switch {
	case err == nil:
		return flows.EnrolPage{Page: "enrol-webauthn", Data: EnrolData{Added: fa.Name}, Added: true}, nil
	case errors.Is(err, store.ErrConflict):
		msg = "webauthn.enrol.duplicate"
	case errors.Is(err, flows.ErrExpired), errors.Is(err, flows.ErrNoChallenge):
		msg = "webauthn.enrol.expired"
	case errors.Is(err, flows.ErrMalformed), errors.Is(err, flows.ErrWrongResponse):
		msg = "webauthn.enrol.refused"
	default:
		return flows.EnrolPage{}, err
	}
	page, err := f.StartEnrol(ctx, r)
	if err != nil {
		return flows.EnrolPage{}, err
	}
	page.Error = msg
	page.Data = EnrolData{Options: page.Data.(EnrolData).Options, Name: label}
	return page, nil
}

// Remove deletes one of the user's passkeys.
func (f *Flow) Remove(ctx context.Context, userID, factorID string) error {
	return factors.Remove(ctx, f.cfg.Store, userID, factorID, ID)
}

// safeJSON makes JSON safe inside a <script type="application/json">.
func safeJSON(raw []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "null"
	}
	var out bytes.Buffer
	json.HTMLEscape(&out, buf.Bytes())
	return out.String()
}
