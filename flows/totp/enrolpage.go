package totp

import (
	"context"
	"encoding/base64"
	"errors"
	"html/template"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/internal/factors"
)

var _ flows.Enroller = (*Flow)(nil)

// EnrolData is what the "enrol-totp" page receives as .Page.Data.
type EnrolData struct {
	// Secret is the base32 secret, for typing into an app.
	Secret string
	// QR is the QR code as a data: URL for an <img>.
	QR template.URL
	// URL is the otpauth:// URI (for a link on phones).
	URL template.URL
	// Minutes is how long the setup can be finished.
	Minutes int
	// Name is the name the user typed, kept after an error.
	Name string
	// Added is the name of the factor just added.
	Added string
}

func enrolData(e Enrollment) EnrolData {
	return EnrolData{
		Secret:  e.Secret,
		QR:      template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QR)),
		URL:     template.URL(e.URL),
		Minutes: int(EnrollmentTTL.Minutes()),
	}
}

// Enrolled lists the user's authenticator apps.
func (f *Flow) Enrolled(ctx context.Context, userID string) ([]flows.Enrolled, error) {
	return factors.List(ctx, f.cfg.Store, userID, ID)
}

// StartEnrol shows a new secret as a QR code and as text. Nothing is
// stored until FinishEnrol accepts a code from the app.
func (f *Flow) StartEnrol(ctx context.Context, r flows.EnrolRequest) (flows.EnrolPage, error) {
	e, err := f.Enroll(ctx, r.UserID, r.Account)
	if err != nil {
		return flows.EnrolPage{}, err
	}
	return flows.EnrolPage{Page: "enrol-totp", Data: enrolData(e), State: []byte(e.Token)}, nil
}

// FinishEnrol checks the code the app shows and stores the app.
func (f *Flow) FinishEnrol(ctx context.Context, r flows.EnrolRequest) (flows.EnrolPage, error) {
	token, name := string(r.State), r.Form.Get("name")
	p, err := f.openToken(token)
	if err != nil || p.userID != r.UserID {
		return f.restart(ctx, r, "totp.enrol.restart")
	}
	fa, err := f.Confirm(ctx, f.cfg.Store, token, r.Form.Get("code"), name)
	var msg string
	switch {
	case err == nil:
		return flows.EnrolPage{Page: "enrol-totp", Data: EnrolData{Added: fa.Name}, Added: true}, nil
	case errors.Is(err, flows.ErrExpired):
		return f.restart(ctx, r, "totp.enrol.expired")
	case errors.Is(err, flows.ErrUsed):
		return f.restart(ctx, r, "totp.enrol.used")
	case errors.Is(err, ErrTooManyFactors):
		return flows.EnrolPage{Page: "enrol-totp", Error: "totp.enrol.too_many"}, nil
	case errors.Is(err, flows.ErrWrongResponse):
		msg = "totp.enrol.wrong_code"
	case errors.Is(err, flows.ErrMalformed):
		msg = "totp.enrol.malformed"
	default:
		return flows.EnrolPage{}, err
	}
	e, err := f.enrollment(p, r.Account)
	if err != nil {
		return flows.EnrolPage{}, err
	}
	d := enrolData(e)
	d.Name = name
	return flows.EnrolPage{Page: "enrol-totp", Data: d, State: []byte(token), Error: msg}, nil
}

func (f *Flow) restart(ctx context.Context, r flows.EnrolRequest, msg string) (flows.EnrolPage, error) {
	page, err := f.StartEnrol(ctx, r)
	page.Error = msg
	return page, err
}

// Remove deletes one of the user's authenticator apps.
func (f *Flow) Remove(ctx context.Context, userID, factorID string) error {
	return factors.Remove(ctx, f.cfg.Store, userID, factorID, ID)
}
