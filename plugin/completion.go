package plugin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/plugin/notify"
	"github.com/sspr-go/sspr/plugin/store"
)

// A password change must never leave a user whose password changed
// without the revocation of their sessions and the notices that go with
// it, even when the process dies halfway (DESIGN: after a reset). The
// directory is the host's and knows nothing of sspr's transactions, so
// commitPassword works in three steps:
//
//  1. in one transaction it queues the notices and a revocation job, held
//     in the outbox for completionHold;
//  2. it calls the directory's SetPassword (bounded well inside the hold)
//     and revokes the sessions;
//  3. in one transaction it releases the notices (due now), settles the
//     revocation job (done, or due now for retries when the revocation
//     failed), and records the history and the audit trail. When the
//     directory refused the password it cancels them instead.
//
// If the process dies between 1 and 3, nothing releases or cancels the
// held messages: after the hold the outbox sends the notices and the
// worker revokes the sessions. The user may then hear of a change that
// did not happen (the process died before SetPassword) — the safe side of
// not knowing.
const completionHold = 30 * time.Second

// setPasswordTimeout bounds the directory's SetPassword (and then its
// RevokeSessions) so that step 3 comes before the hold ends; a SetPassword
// that takes longer counts as "may have changed" and the held messages go
// out. Step 3 releases nothing when it comes late anyway.
const setPasswordTimeout = completionHold / 3

// revokeChannel is the outbox channel of revocation jobs: their recipient
// is a user ID, and the plugin's sender revokes that user's sessions
// instead of sending anything.
const revokeChannel = "sspr-revoke"

// attemptsChannel is the outbox channel of "the last try went wrong"
// jobs (queueAttemptsNotice): their recipient is a user ID ("" for a decoy
// journey), and the plugin's sender queues the "attempts" notice to each
// of that user's addresses instead of sending anything.
const attemptsChannel = "sspr-attempts"

// changedData is what the "changed" message template receives as .Data,
// and what every notice's data holds: when, and where to start a reset.
type changedData struct {
	Time     string
	ResetURL string
}

// noticeData is the changedData of a notice about something at now.
func (p *Plugin) noticeData(now time.Time) changedData {
	return changedData{Time: now.UTC().Format("2006-01-02 15:04 MST"), ResetURL: p.url("/", nil)}
}

// adminResetData is what the "admin-reset" message template receives.
type adminResetData struct {
	// Admin names the administrator who reset their password.
	Admin string
	// Time is when.
	Time string
	// How is a message key: "notice.how_reset" or "notice.how_ticket".
	How string
}

// commitPassword sets the vetted password through the directory, revokes
// the user's sessions, records the history, notifies every contact address
// (and the other administrators when the user is one) and writes the
// audit trail, in the crash-safe order described above.
func (p *Plugin) commitPassword(ctx context.Context, r *http.Request, j store.Journey, pr progress, v vetted, pw, event string) error {
	userID := pr.user.ID
	addrs, err := p.addresses(ctx, pr.subject)
	if err != nil {
		return internalError(err)
	}
	others, err := p.otherAdmins(ctx, j, pr)
	if err != nil {
		return internalError(err)
	}
	now := p.s.Now()
	wall := p.wallNow
	if wall == nil {
		wall = time.Now
	}
	started := wall() // the hold runs on the outbox's clock, but a slow directory on the wall clock
	held := now.Add(completionHold)
	lang := p.locale(r)
	notice := p.noticeData(now)
	var notices []int64
	var job int64
	err = p.atomic(ctx, func(tx store.Tx) error {
		notices = notices[:0]
		ids, err := p.queueNotices(ctx, tx, held, addrs, "changed", lang, notice)
		if err != nil {
			return err
		}
		notices = append(notices, ids...)
		how := "notice.how_reset"
		if slices.Contains(j.Verified, ticketFlowID) {
			how = "notice.how_ticket"
		}
		admin := cmp.Or(pr.user.DisplayName, pr.user.Username, pr.user.Email, pr.user.ID)
		for _, a := range others {
			id, err := p.queueAt(ctx, tx, held, "admin-reset", "email", a.Email, cmp.Or(a.Locale, lang), adminResetData{Admin: admin, Time: notice.Time, How: how})
			if err != nil {
				return err
			}
			notices = append(notices, id)
		}
		if p.revoker != nil {
			if job, err = p.enqueue(ctx, tx, held, queued{Channel: revokeChannel, To: userID}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return internalError(err)
	}

	// From here on the change must finish even if the client goes away.
	ctx = context.WithoutCancel(ctx)
	setCtx, cancel := context.WithTimeout(ctx, setPasswordTimeout)
	err = p.s.Directory.SetPassword(setCtx, userID, pw)
	cancel()
	if err != nil {
		outcome, detail := "failed", "directory refused the password"
		if !errors.Is(err, ErrPasswordRejected) {
			// It may have changed (a lost connection, a timeout): leave
			// the notices and the revocation held, so they go out.
			outcome, detail = "uncertain", "directory failed; the password may have changed"
		}
		rerr := p.atomic(ctx, func(tx store.Tx) error {
			if outcome == "failed" {
				for _, id := range append(notices, job) {
					if id == 0 {
						continue
					}
					if err := tx.MarkFailed(ctx, id, now, "cancelled: password not changed", true); err != nil {
						return err
					}
				}
			}
			return p.audit(ctx, tx, r, event, j.ID, userID, outcome, detail)
		})
		if rerr != nil {
			p.log.ErrorContext(ctx, "sspr: record refused password change failed", slog.String("user", userID), slog.Any("err", rerr))
		}
		if outcome == "uncertain" {
			p.worker.Kick()
			return &Error{Kind: KindInternal, Status: http.StatusInternalServerError,
				Heading: "error.uncertain.heading",
				Public:  "error.uncertain.message",
				Err:     fmt.Errorf("sspr: set password: %w", err)}
		}
		return &Error{Kind: KindInternal, Status: http.StatusInternalServerError,
			Heading: "error.not_changed.heading",
			Public:  "error.not_changed.message",
			Err:     fmt.Errorf("sspr: set password: %w", err)}
	}
	revoked := "not supported by the host"
	if p.revoker != nil {
		revokeCtx, cancel := context.WithTimeout(ctx, setPasswordTimeout)
		err := p.revoker.RevokeSessions(revokeCtx, userID)
		cancel()
		if err != nil {
			p.log.ErrorContext(ctx, "sspr: revoke sessions failed; the outbox retries", slog.String("user", userID), slog.Any("err", err))
			revoked = "failed, retrying"
		} else {
			revoked = "ok"
		}
	}
	now = p.s.Now()
	// Release the held messages only well inside the hold: once it has
	// ended the worker may be sending them, and releasing a message being
	// sent could send it twice. Late, they go out by themselves.
	release := wall().Sub(started) < completionHold*2/3
	err = p.atomic(ctx, func(tx store.Tx) error {
		if err := p.saveHistory(ctx, tx, v.hist, v.key); err != nil {
			return err
		}
		if !release {
			// The notices go out by themselves; the revocation job is done
			// when the inline revocation succeeded (marking a job that the
			// worker may be running at worst repeats a revocation).
			if job != 0 && revoked == "ok" {
				if err := tx.MarkSent(ctx, job, now); err != nil {
					return fmt.Errorf("sspr: settle revocation: %w", err)
				}
			}
			if err := p.audit(ctx, tx, r, event, j.ID, userID, "ok", "late: the held notices went out by themselves"); err != nil {
				return err
			}
			return p.audit(ctx, tx, r, "sessions.revoke", j.ID, userID, revoked, "")
		}
		for _, id := range notices {
			if err := tx.MarkFailed(ctx, id, now, "", false); err != nil {
				return fmt.Errorf("sspr: release notice: %w", err)
			}
		}
		if job != 0 {
			var err error
			if revoked == "ok" {
				err = tx.MarkSent(ctx, job, now)
			} else {
				err = tx.MarkFailed(ctx, job, now, "", false)
			}
			if err != nil {
				return fmt.Errorf("sspr: settle revocation: %w", err)
			}
		}
		if err := p.audit(ctx, tx, r, event, j.ID, userID, "ok", ""); err != nil {
			return err
		}
		return p.audit(ctx, tx, r, "sessions.revoke", j.ID, userID, revoked, "")
	})
	if err != nil {
		// The password is changed; only the record of it failed. The held
		// notices and revocation go out after the hold. Say so in the log,
		// and still lead the user on.
		p.log.ErrorContext(ctx, "sspr: record password change failed", slog.String("user", userID), slog.Any("err", err))
		// The change happened: the log and the metrics still get it.
		p.recordUnstored(ctx, r, store.AuditEvent{Event: event, JourneyID: j.ID, UserID: userID, Outcome: "ok"},
			store.AuditEvent{Event: "sessions.revoke", JourneyID: j.ID, UserID: userID, Outcome: revoked})
	}
	p.worker.Kick()
	return nil
}

// send is the worker's sender: revocation jobs revoke, attempts jobs
// queue their notices, everything else goes to the host's Sender.
func (p *Plugin) send(ctx context.Context, m notify.Message) error {
	switch m.Channel {
	case attemptsChannel:
		return p.tellAttempts(ctx, m)
	case revokeChannel:
	default:
		return p.s.Sender.Send(ctx, m)
	}
	if p.revoker == nil {
		return notify.Permanent(errors.New("sspr: the Directory cannot revoke sessions"))
	}
	outcome := "ok"
	err := p.revoker.RevokeSessions(ctx, m.To)
	if err != nil {
		outcome = "failed"
	}
	if aerr := p.atomic(ctx, func(tx store.Tx) error {
		return p.appendAudit(ctx, tx, store.AuditEvent{Event: "sessions.revoke", UserID: m.To, Outcome: outcome,
			Detail: "by the outbox, after an interrupted or failed revocation"})
	}); aerr != nil {
		p.log.ErrorContext(ctx, "sspr: audit revocation failed", slog.Any("err", aerr))
	}
	if err != nil {
		return fmt.Errorf("sspr: revoke sessions: %w", err)
	}
	return nil
}

// tellAttempts carries out an attempts job (queueAttemptsNotice): it
// queues the "attempts" notice to every address of the user, at most
// Limits.MessagesPerDestination jobs per user and window (someone who
// knows only an identifier could otherwise have the user's phones texted
// at will), and wakes the worker for them. A user who is gone is told
// nothing.
func (p *Plugin) tellAttempts(ctx context.Context, m notify.Message) error {
	var q queued
	var data attemptsData
	if err := errors.Join(json.Unmarshal([]byte(m.Text), &q), json.Unmarshal(q.Data, &data)); err != nil {
		return notify.Permanent(fmt.Errorf("sspr: attempts job: %w", err))
	}
	u, err := p.s.Directory.User(ctx, m.To)
	if errors.Is(err, ErrUserNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sspr: attempts job: directory: %w", err)
	}
	s, err := p.subject(ctx, u)
	if err != nil {
		return fmt.Errorf("sspr: attempts job: %w", err)
	}
	addrs, err := p.addresses(ctx, s)
	if err != nil {
		return fmt.Errorf("sspr: attempts job: %w", err)
	}
	now := p.s.Now()
	err = p.atomic(ctx, func(tx store.Tx) error {
		lim, err := p.limits.hit(ctx, tx, p.s.Limits.MessagesPerDestination, p.limits.key("attempts-user", u.ID), now)
		if err != nil {
			return err
		}
		if lim.exceeded {
			return p.appendAudit(ctx, tx, store.AuditEvent{Event: "message.limited", Outcome: "limited", JourneyID: q.Journey, UserID: u.ID,
				Detail: "per-user limit of attempts notices"})
		}
		_, err = p.queueNotices(ctx, tx, now, addrs, "attempts", q.Lang, data)
		return err
	})
	if err != nil {
		return fmt.Errorf("sspr: attempts job: %w", err)
	}
	p.worker.Kick()
	return nil
}

// address is one contact address on one channel.
type address struct {
	channel, to string
}

// addresses lists every contact address of s: its email addresses, and
// the addresses of every other channel flow that can list them (the phone
// numbers of flows/sms) and whose messages the plugin has templates for.
func (p *Plugin) addresses(ctx context.Context, s flows.Subject) ([]address, error) {
	var out []address
	for _, e := range s.Emails {
		out = append(out, address{channel: "email", to: e})
	}
	for _, f := range p.channels {
		ad, ok := f.(flows.Addresser)
		if !ok || f.ID() == "email" {
			continue
		}
		list, err := ad.Addresses(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("sspr: %s addresses: %w", f.ID(), err)
		}
		for _, a := range list {
			out = append(out, address{channel: f.ID(), to: a})
		}
	}
	return out, nil
}

// queueNotices queues the notice template to every address whose channel
// has it, due at at, and returns the messages' IDs.
func (p *Plugin) queueNotices(ctx context.Context, tx store.Tx, at time.Time, addrs []address, template, lang string, data any) ([]int64, error) {
	var ids []int64
	for _, a := range addrs {
		if !p.pages.hasMessage(a.channel, template) {
			continue
		}
		id, err := p.queueAt(ctx, tx, at, template, a.channel, a.to, lang, data)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// otherAdmins returns the administrators to tell when user, an
// administrator, resets their password in journey j: every other one with
// an email address. None for a signed-in change, or without the
// [AdminChecker] and [AdminLister] capabilities.
func (p *Plugin) otherAdmins(ctx context.Context, j store.Journey, pr progress) ([]User, error) {
	if p.adminLister == nil || !pr.admin || j.ID == "" || j.Kind == store.KindStepUp {
		return nil, nil
	}
	user := pr.user
	all, err := p.adminLister.Admins(ctx)
	if err != nil {
		return nil, fmt.Errorf("sspr: directory: admins: %w", err)
	}
	var out []User
	for _, a := range all {
		if a.ID != user.ID && a.Email != "" {
			out = append(out, a)
		}
	}
	return out, nil
}
