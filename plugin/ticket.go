package plugin

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/sspr-go/sspr/plugin/store"
)

// Admin reset tickets: for a user who lost their bound factors (the
// journey ends at "contact your helpdesk"), an administrator issues a
// one-time link that starts a reset journey, emailed to the user or handed
// to them. The ticket stands in for the lost bound factors (the
// administrator vouches for the person); the rest of the policy still
// applies: the user proves the contact channel (the emailed code), so the
// administrator, who holds the link, can neither choose nor see the new
// password.

// ticketFlowID marks a journey started by a ticket; the policy counts it
// as a proved bound factor.
const ticketFlowID = "ticket"

// MaxTicketTTL is the longest a ticket may live.
const MaxTicketTTL = 24 * time.Hour

// TicketRequest asks for a reset ticket.
type TicketRequest struct {
	// UserID is the user to reset. Required.
	UserID string
	// TTL is how long the link works: at most [MaxTicketTTL]. Default: 1 hour.
	TTL time.Duration
	// Email sends the link to the user's contact addresses instead of
	// returning it.
	Email bool
	// IssuedBy names the administrator, for the audit trail.
	IssuedBy string
}

// Ticket is an issued reset ticket.
type Ticket struct {
	// URL is the one-time link; empty when the ticket was emailed.
	URL string `json:"url,omitempty"`
	// ExpiresAt is when the link stops working.
	ExpiresAt time.Time `json:"expires_at"`
	// Emailed reports that the link went to the user by email.
	Emailed bool `json:"emailed"`
}

// ErrBadTicketRequest is returned by [Plugin.IssueTicket] for a request it
// cannot serve (unknown user, bad TTL, no address to email).
var ErrBadTicketRequest = errors.New("sspr: bad ticket request")

// IssueTicket creates a one-time reset link for a user. The journey it
// starts expires with the ticket; the link is single use and, like an
// emailed link, a GET of it never consumes it.
func (p *Plugin) IssueTicket(ctx context.Context, req TicketRequest) (Ticket, error) {
	switch {
	case req.UserID == "":
		return Ticket{}, fmt.Errorf("%w: user ID is required", ErrBadTicketRequest)
	case req.TTL == 0:
		req.TTL = time.Hour
	case req.TTL < time.Minute || req.TTL > MaxTicketTTL:
		return Ticket{}, fmt.Errorf("%w: TTL must be between 1m and 24h", ErrBadTicketRequest)
	}
	u, err := p.s.Directory.User(ctx, req.UserID)
	if errors.Is(err, ErrUserNotFound) {
		return Ticket{}, fmt.Errorf("%w: no such user", ErrBadTicketRequest)
	}
	if err != nil {
		return Ticket{}, fmt.Errorf("sspr: ticket: directory: %w", err)
	}
	subject, err := p.subject(ctx, u)
	if err != nil {
		return Ticket{}, err
	}
	if req.Email && len(subject.Emails) == 0 {
		return Ticket{}, fmt.Errorf("%w: the user has no email address", ErrBadTicketRequest)
	}
	now := p.s.Now()
	token := randomID(32)
	sum := sha256.Sum256([]byte(token))
	j := store.Journey{ID: journeyID(p.s.Now()), Kind: store.KindReset, UserID: u.ID, Locale: cmp.Or(u.Locale, referenceLang),
		CreatedAt: now, ExpiresAt: now.Add(req.TTL)}
	link := p.url("/ticket", url.Values{"token": {token}})
	t := Ticket{ExpiresAt: j.ExpiresAt, Emailed: req.Email}
	err = p.atomic(ctx, func(tx store.Tx) error {
		if err := tx.CreateJourney(ctx, j); err != nil {
			return err
		}
		if err := tx.CreateChallenge(ctx, store.Challenge{ID: journeyID(p.s.Now()), JourneyID: j.ID, Flow: ticketFlowID,
			TokenHash: sum[:], MaxAttempts: 1, CreatedAt: now, ExpiresAt: j.ExpiresAt}); err != nil {
			return err
		}
		if req.Email {
			data := ticketData{Link: link, Expires: j.ExpiresAt.UTC().Format("2006-01-02 15:04 MST")}
			for _, addr := range subject.Emails {
				if err := p.queue(ctx, tx, "ticket", "email", addr, j.Locale, data); err != nil {
					return err
				}
			}
		}
		return p.appendAudit(ctx, tx, store.AuditEvent{Event: "ticket.issue", JourneyID: j.ID, UserID: u.ID, Outcome: "ok",
			Detail: truncateUTF8("by "+req.IssuedBy, 128)})
	})
	if err != nil {
		return Ticket{}, fmt.Errorf("sspr: ticket: %w", err)
	}
	if req.Email {
		p.worker.Kick()
	} else {
		t.URL = link
	}
	return t, nil
}

// ticketData is what the "ticket" message template receives as .Data.
type ticketData struct {
	Link, Expires string
}

// ticketPage is the data of the "ticket" page.
type ticketPage struct{ Token string }

// ticketChallenge finds the live ticket of a token without using it.
func (p *Plugin) ticketChallenge(ctx context.Context, token string) (store.Challenge, error) {
	if len(token) != base64.RawURLEncoding.EncodedLen(32) {
		return store.Challenge{}, errLinkInvalid
	}
	sum := sha256.Sum256([]byte(token))
	c, err := p.s.Store.ChallengeByToken(ctx, sum[:])
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && c.Flow != ticketFlowID):
		return c, errLinkInvalid
	case err != nil:
		return c, internalError(err)
	case !c.UsedAt.IsZero():
		return c, errLinkUsed
	case !p.s.Now().Before(c.ExpiresAt):
		return c, errLinkExpired
	}
	return c, nil
}

// ticketLanding shows the ticket's page (GET) or redeems the ticket (POST):
// the journey moves to this browser and goes on with the policy's next
// step.
func (p *Plugin) ticketLanding(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		token := r.URL.Query().Get("token")
		if _, err := p.ticketChallenge(ctx, token); err != nil {
			return err
		}
		p.render(w, r, http.StatusOK, "ticket", "ticket:"+token, ticketPage{Token: token})
		return nil
	}
	token := r.PostForm.Get("token")
	if err := p.checkPost(r, "ticket:"+token); err != nil {
		return err
	}
	if _, err := p.ticketChallenge(ctx, token); err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(token))
	now := p.s.Now()
	var j store.Journey
	err := p.atomic(ctx, func(tx store.Tx) error {
		c, err := tx.ConsumeToken(ctx, sum[:], now)
		if err != nil {
			return err
		}
		if j, err = tx.Journey(ctx, c.JourneyID); err != nil {
			return err
		}
		j.Verified = append(slices.Clone(j.Verified), ticketFlowID)
		// From here the journey lives as long as any other.
		j.ExpiresAt = now.Add(p.s.JourneyTTL)
		if err := tx.UpdateJourney(ctx, j); err != nil {
			return err
		}
		return p.audit(ctx, tx, r, "ticket.redeem", j.ID, j.UserID, "ok", "")
	})
	switch {
	case errors.Is(err, store.ErrUsed):
		return errLinkUsed
	case errors.Is(err, store.ErrExpired):
		return errLinkExpired
	case err != nil:
		return internalError(err)
	}
	if err := p.setCookieID(w, r, j.ID); err != nil {
		return err
	}
	// Begin the next step (a bound factor, when the user has one).
	pr, err := p.progress(ctx, j)
	if err != nil {
		return err
	}
	if !pr.done && len(pr.next) > 0 {
		if err := p.atomic(ctx, func(tx store.Tx) error { return p.begin(ctx, tx, r, j, pr.subject, pr.next[0]) }); err != nil {
			return internalError(err)
		}
		p.worker.Kick()
	}
	if pr.done {
		p.redirect(w, "/password", nil)
	} else {
		p.redirect(w, "/verify", nil)
	}
	return nil
}

// ticketRequestJSON is the body of the ticket API.
type ticketRequestJSON struct {
	UserID   string `json:"user_id"`
	TTL      string `json:"ttl"`
	Email    bool   `json:"email"`
	IssuedBy string `json:"issued_by"`
}

// TicketHandler serves the ticket API for administrators: POST a JSON body
// {"user_id": "…", "ttl": "2h", "email": true, "issued_by": "admin@…"} and
// get {"url": "…", "expires_at": "…", "emailed": false} (no url when
// emailed). Mount it behind your own authorization. Bad requests answer
// 400 with {"error": "…"}.
func (p *Plugin) TicketHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "only POST is allowed"})
			return
		}
		var in ticketRequestJSON
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be a JSON object with user_id, ttl, email and issued_by"})
			return
		}
		req := TicketRequest{UserID: in.UserID, Email: in.Email, IssuedBy: in.IssuedBy}
		if in.TTL != "" {
			d, err := time.ParseDuration(in.TTL)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "ttl must be a duration such as 2h"})
				return
			}
			req.TTL = d
		}
		t, err := p.IssueTicket(r.Context(), req)
		switch {
		case errors.Is(err, ErrBadTicketRequest):
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		case err != nil:
			p.log.ErrorContext(r.Context(), "sspr: ticket API", slog.Any("err", err))
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "the ticket could not be issued"})
		default:
			writeJSON(w, http.StatusCreated, t)
		}
	})
}
