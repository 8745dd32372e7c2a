package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/plugintest"
	"github.com/sspr-go/sspr/plugin/store"
)

// hold is a little more than the plugin's completion hold (30 s).
const hold = 31 * time.Second

// breakableStore fails every transaction while broken is set, like a
// process that died: nothing more gets written.
type breakableStore struct {
	store.Store
	broken atomic.Bool
}

func (s *breakableStore) Atomic(ctx context.Context, fn func(tx store.Tx) error) error {
	if s.broken.Load() {
		return errors.New("test: the process is gone")
	}
	return s.Store.Atomic(ctx, fn)
}

// resetAlice walks alice's reset by email code up to the password POST.
func resetAlice(t *testing.T, h *harness) *plugintest.Page {
	t.Helper()
	b := plugintest.NewBrowser(t)
	pw := b.Follow(h.emailStep(b, "alice", "alice@example.com"))
	return b.Submit(pw, "/recovery/password", map[string]string{"password": newPassword, "confirm": newPassword})
}

func changeNotices(h *harness) []string {
	var to []string
	for _, m := range h.mail.all() {
		if strings.Contains(m.Subject, "password was changed") {
			to = append(to, m.To)
		}
	}
	return to
}

// TestInterruptedCompletionStillNotifiesAndRevokes plays a process that
// dies right after the directory changed the password: neither the inline
// revocation nor the final transaction happen. The notices and the
// revocation queued before SetPassword go out once the hold ends.
func TestInterruptedCompletionStillNotifiesAndRevokes(t *testing.T) {
	var bs *breakableStore
	h := newHarness(t, func(c *plugin.Config) {
		bs = &breakableStore{Store: c.Store}
		c.Store = bs
	})
	h.dir.afterSet = func() {
		bs.broken.Store(true)
		h.dir.mu.Lock()
		h.dir.revokeErr = errors.New("test: the process is gone")
		h.dir.mu.Unlock()
	}
	done := resetAlice(t, h)
	if done.Status != http.StatusSeeOther {
		t.Fatalf("set password: %d %s", done.Status, done.Text())
	}
	if h.dir.password("u-alice") != newPassword {
		t.Fatal("password not changed")
	}
	// "Restart": the store works again, the host can revoke.
	bs.broken.Store(false)
	h.dir.mu.Lock()
	h.dir.revokeErr, h.dir.afterSet = nil, nil
	h.dir.mu.Unlock()

	h.deliver()
	if got := changeNotices(h); len(got) != 0 || h.dir.revocations("u-alice") != 0 {
		t.Fatalf("before the hold ends: notices %v, revocations %d", got, h.dir.revocations("u-alice"))
	}
	h.clock.Advance(hold)
	h.deliver()
	got := changeNotices(h)
	if len(got) != 2 || got[0] == got[1] {
		t.Fatalf("after the hold: change notices to %v, want both of alice's addresses", got)
	}
	if n := h.dir.revocations("u-alice"); n != 1 {
		t.Fatalf("sessions revoked %d times after the hold, want 1", n)
	}
	evs := h.audit("sessions.revoke")
	if len(evs) != 1 || evs[0].Outcome != "ok" || evs[0].UserID != "u-alice" || !strings.Contains(evs[0].Detail, "outbox") {
		t.Fatalf("audit of the late revocation: %+v", evs)
	}
}

// TestCompletionReleasesAtOnce: a change that completes sends its notices
// now, and revokes once, inline.
func TestCompletionReleasesAtOnce(t *testing.T) {
	h := newHarness(t)
	if done := resetAlice(t, h); done.Status != http.StatusSeeOther {
		t.Fatalf("set password: %d", done.Status)
	}
	// Revoked inline, before the answer: not left to the outbox.
	if n := h.dir.revocations("u-alice"); n != 1 {
		t.Fatalf("sessions revoked %d times before any delivery, want 1", n)
	}
	if evs := h.audit("sessions.revoke"); len(evs) != 1 || evs[0].Outcome != "ok" {
		t.Fatalf("audit of the inline revocation: %+v", evs)
	}
	h.deliver()
	if got := changeNotices(h); len(got) != 2 {
		t.Fatalf("change notices to %v, want 2 at once", got)
	}
	h.clock.Advance(hold)
	h.deliver()
	if n := h.dir.revocations("u-alice"); n != 1 {
		t.Fatalf("sessions revoked %d times, want exactly 1 (the held job must be settled)", n)
	}
	if got := changeNotices(h); len(got) != 2 {
		t.Fatalf("notices sent again after the hold: %v", got)
	}
}

// TestRefusedPasswordCancelsHeldNotices: when the directory refuses, the
// held notices and revocation never go out, not even after the hold.
func TestRefusedPasswordCancelsHeldNotices(t *testing.T) {
	h := newHarness(t)
	h.dir.setErr = fmt.Errorf("ldap: constraint violation: %w", plugin.ErrPasswordRejected)
	if p := resetAlice(t, h); p.Status != http.StatusInternalServerError {
		t.Fatalf("refused change: %d", p.Status)
	}
	h.clock.Advance(hold)
	h.deliver()
	if got := changeNotices(h); len(got) != 0 || h.dir.revocations("u-alice") != 0 {
		t.Fatalf("refused change: notices %v, revocations %d", got, h.dir.revocations("u-alice"))
	}
	if evs := h.audit("password.change"); len(evs) != 1 || evs[0].Outcome != "failed" {
		t.Fatalf("audit: %+v", evs)
	}
}

// TestUncertainPasswordChangeCountsAsChanged: a directory error that is
// not ErrPasswordRejected (a connection lost after the write) leaves sspr
// unsure, so it says so and acts as if the password changed: after the
// hold the user is told and signed out everywhere.
func TestUncertainPasswordChangeCountsAsChanged(t *testing.T) {
	h := newHarness(t)
	h.dir.setErr = errors.New("ldap: connection reset by peer")
	p := resetAlice(t, h)
	if p.Status != http.StatusInternalServerError || !strings.Contains(p.Text(), "We couldn't confirm the change") || strings.Contains(p.Text(), "ldap") {
		t.Fatalf("uncertain change: %d %s", p.Status, p.Text())
	}
	h.deliver()
	if got := changeNotices(h); len(got) != 0 {
		t.Fatalf("notices before the hold ends: %v", got)
	}
	h.clock.Advance(hold)
	h.deliver()
	if got := changeNotices(h); len(got) != 2 || h.dir.revocations("u-alice") != 1 {
		t.Fatalf("after the hold: notices %v, revocations %d", got, h.dir.revocations("u-alice"))
	}
	if evs := h.audit("password.change"); len(evs) != 1 || evs[0].Outcome != "uncertain" {
		t.Fatalf("audit: %+v", evs)
	}
}

// TestFailedRevocationIsRetriedByTheOutbox: a host that fails to revoke
// once is asked again by the outbox until it succeeds.
func TestFailedRevocationIsRetriedByTheOutbox(t *testing.T) {
	h := newHarness(t)
	h.dir.revokeErr = errors.New("session store down")
	if done := resetAlice(t, h); done.Status != http.StatusSeeOther {
		t.Fatalf("set password: %d", done.Status)
	}
	if evs := h.audit("sessions.revoke"); len(evs) != 1 || evs[0].Outcome != "failed, retrying" {
		t.Fatalf("audit after failed revocation: %+v", evs)
	}
	h.deliver() // fails again: the host is still down
	h.dir.mu.Lock()
	h.dir.revokeErr = nil
	h.dir.mu.Unlock()
	h.clock.Advance(10 * time.Minute) // past the worker's backoff
	h.deliver()
	if n := h.dir.revocations("u-alice"); n != 1 {
		t.Fatalf("revocations after the host recovered: %d, want 1", n)
	}
	evs := h.audit("sessions.revoke")
	if evs[0].Outcome != "ok" {
		t.Fatalf("newest revocation audit: %+v", evs[0])
	}
}

// slowDirectory is how long the directory of lateHarness takes to set a
// password: past two thirds of the 30 s completion hold, so the completion
// comes too late to release the held messages, but inside the hold.
const slowDirectory = 25 * time.Second

// lateHarness returns a harness whose directory takes slowDirectory to set
// a password, on the wall clock (which times the directory) and on the
// outbox's clock alike.
func lateHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	wall := &clock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	plugin.SetWallClock(h.p, wall.Now)
	h.dir.afterSet = func() {
		wall.Advance(slowDirectory)
		h.clock.Advance(slowDirectory)
	}
	return h
}

// wasLate fails t unless alice's password change was recorded as a late
// completion.
func wasLate(t *testing.T, h *harness) {
	t.Helper()
	evs := h.audit("password.change")
	if len(evs) != 1 || evs[0].Outcome != "ok" || !strings.HasPrefix(evs[0].Detail, "late: ") {
		t.Fatalf("audit of a late completion: %+v", evs)
	}
}

// TestLateCompletionSendsHeldNoticesOnce: when the directory took most of
// the hold, the completion leaves the held notices alone; they go out once
// the hold ends, once, and the audit trail says the completion was late.
func TestLateCompletionSendsHeldNoticesOnce(t *testing.T) {
	h := lateHarness(t)
	if done := resetAlice(t, h); done.Status != http.StatusSeeOther {
		t.Fatalf("set password: %d %s", done.Status, done.Text())
	}
	if h.dir.password("u-alice") != newPassword {
		t.Fatal("password not changed")
	}
	wasLate(t, h)
	h.deliver()
	if got := changeNotices(h); len(got) != 0 {
		t.Fatalf("notices before the hold ended: %v", got)
	}
	h.clock.Advance(hold - slowDirectory)
	h.deliver()
	got := changeNotices(h)
	if len(got) != 2 || got[0] == got[1] {
		t.Fatalf("after the hold: change notices to %v, want both of alice's addresses once", got)
	}
	h.clock.Advance(time.Hour)
	h.deliver()
	if again := changeNotices(h); len(again) != 2 {
		t.Fatalf("notices sent again later: %v", again)
	}
}

// TestLateCompletionSettlesTheInlineRevocation: a late completion whose
// inline revocation worked marks the held revocation job done, so the
// outbox does not revoke again after the hold.
func TestLateCompletionSettlesTheInlineRevocation(t *testing.T) {
	h := lateHarness(t)
	if done := resetAlice(t, h); done.Status != http.StatusSeeOther {
		t.Fatalf("set password: %d %s", done.Status, done.Text())
	}
	wasLate(t, h)
	if n := h.dir.revocations("u-alice"); n != 1 {
		t.Fatalf("sessions revoked %d times inline, want 1", n)
	}
	h.clock.Advance(hold)
	h.deliver()
	if n := h.dir.revocations("u-alice"); n != 1 {
		t.Fatalf("sessions revoked %d times after the hold, want 1 (the held job must be settled)", n)
	}
	if evs := h.audit("sessions.revoke"); len(evs) != 1 || evs[0].Outcome != "ok" || evs[0].Detail != "" {
		t.Fatalf("audit of the revocation: %+v, want the inline one alone", evs)
	}
}

// TestLateCompletionLeavesAFailedRevocationToTheOutbox: a late completion
// whose inline revocation failed leaves the held revocation job to the
// outbox, which revokes once the hold ends.
func TestLateCompletionLeavesAFailedRevocationToTheOutbox(t *testing.T) {
	h := lateHarness(t)
	h.dir.revokeErr = errors.New("session store down")
	if done := resetAlice(t, h); done.Status != http.StatusSeeOther {
		t.Fatalf("set password: %d %s", done.Status, done.Text())
	}
	wasLate(t, h)
	if evs := h.audit("sessions.revoke"); len(evs) != 1 || evs[0].Outcome != "failed, retrying" {
		t.Fatalf("audit of the failed inline revocation: %+v", evs)
	}
	h.dir.mu.Lock()
	h.dir.revokeErr = nil
	h.dir.mu.Unlock()
	h.deliver()
	if n := h.dir.revocations("u-alice"); n != 0 {
		t.Fatalf("sessions revoked %d times before the hold ended: a late completion leaves the job held", n)
	}
	h.clock.Advance(hold - slowDirectory)
	h.deliver()
	if n := h.dir.revocations("u-alice"); n != 1 {
		t.Fatalf("sessions revoked %d times after the hold, want 1 by the outbox", n)
	}
	evs := h.audit("sessions.revoke")
	if len(evs) != 2 || evs[0].Outcome != "ok" || !strings.Contains(evs[0].Detail, "outbox") {
		t.Fatalf("audit of the outbox's revocation: %+v", evs)
	}
}
