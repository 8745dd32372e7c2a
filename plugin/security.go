package plugin

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/plugin/store"
)

// The security-info page (<base>/account/security) lists the signed-in
// user's bound factors and lets them add and remove them. Viewing needs a
// signed-in user; every change needs a step-up no older than StepUpMaxAge,
// is written to the audit trail and announced by email to every contact
// address.

// securitySection is one flow on the security-info page.
type securitySection struct {
	Flow    string
	Title   string
	Add     string
	Factors []flows.Enrolled
	AddURL  string
}

// securityPage is the data of the "security" page.
type securityPage struct {
	Sections          []securitySection
	Notice            string
	ChangePasswordURL string
	AccountURL        string
	// CanSignOutOthers offers to end the user's other sessions (the host
	// can revoke them); Changed puts the offer first, after a change of a
	// security method (ASVS V7.4.3).
	CanSignOutOthers, Changed bool
}

// enrolView is the data of an enrolment page ("enrol-totp", …).
type enrolView struct {
	Flow   string
	Title  string
	Action string
	State  string
	Error  string
	Added  bool
	Back   string
	Script string
	Data   any
}

func flowTitle(f flows.Flow) string {
	if pp, ok := f.(flows.Prompter); ok {
		return cmp.Or(pp.Prompt().Choice, f.ID())
	}
	return f.ID()
}

// accountBinding is the CSRF binding of the signed-in pages: the user and
// the session's auth time, so a token dies with the session.
func accountBinding(sess Session) string {
	return "account:" + sess.UserID + ":" + fmt.Sprint(sess.AuthTime.Unix())
}

// security serves <base>/account/security and the pages under it.
func (p *Plugin) security(w http.ResponseWriter, r *http.Request, rest string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		return errMethod
	}
	sess, err := p.signedIn(r)
	if err != nil {
		return err
	}
	binding := accountBinding(sess)
	if r.Method == http.MethodPost {
		if err := p.checkPost(r, binding); err != nil {
			return err
		}
	}
	if rest == "" {
		if r.Method == http.MethodPost && r.PostForm.Get("stepup") == "1" {
			// The button of the step-up page a stale removal showed: its
			// target is this page.
			return p.stepUpForSecurityPage(w, r, sess, binding)
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return errMethod
		}
		return p.securityPage(w, r, sess, binding)
	}
	if rest == "/signout-others" {
		if r.Method != http.MethodPost {
			return errMethod
		}
		return p.signOutOthers(w, r, sess)
	}
	id, action, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	f, ok := p.byID[id]
	en, isEnroller := p.enrollerOf[id]
	if !ok || !isEnroller || (action != "add" && action != "remove") {
		return errNotFound
	}
	ctx := r.Context()
	pr, fresh, err := p.signedInStanding(ctx, r, sess)
	if err != nil {
		return err
	}
	if !fresh {
		target := "/account/security/" + id + "/add"
		if action == "remove" {
			target = "/account/security"
		}
		return p.needStepUp(w, r, sess, pr, target, binding)
	}
	switch {
	case action == "remove" && r.Method == http.MethodPost:
		return p.removeFactor(w, r, sess, pr, f, en)
	case action == "add" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		return p.enrol(w, r, sess, pr, f, en, binding)
	}
	return errMethod
}

// stepUpForSecurityPage starts the step-up that a removal asked for and
// leads back to the security-info page; with a fresh step-up already in
// place it just goes back there.
func (p *Plugin) stepUpForSecurityPage(w http.ResponseWriter, r *http.Request, sess Session, binding string) error {
	ctx := r.Context()
	pr, fresh, err := p.signedInStanding(ctx, r, sess)
	if err != nil {
		return err
	}
	if fresh {
		p.redirect(w, "/account/security", nil)
		return nil
	}
	return p.needStepUp(w, r, sess, pr, "/account/security", binding)
}

func (p *Plugin) securityPage(w http.ResponseWriter, r *http.Request, sess Session, binding string) error {
	ctx := r.Context()
	page := securityPage{ChangePasswordURL: p.basePath + "/account/password", AccountURL: p.accountURL(),
		CanSignOutOthers: p.revoker != nil}
	for _, f := range p.enrollers {
		list, err := p.enrollerOf[f.ID()].Enrolled(ctx, sess.UserID)
		if err != nil {
			return internalError(err)
		}
		title, add := flowTitle(f), "Add "+flowTitle(f)
		if pp, ok := f.(flows.Prompter); ok {
			title, add = cmp.Or(pp.Prompt().Section, title), cmp.Or(pp.Prompt().Add, add)
		}
		page.Sections = append(page.Sections, securitySection{Flow: f.ID(), Title: title, Add: add, Factors: list,
			AddURL: p.basePath + "/account/security/" + f.ID() + "/add"})
	}
	switch r.URL.Query().Get("done") {
	case "removed":
		page.Notice, page.Changed = "security.notice_removed", true
	case "added":
		page.Notice, page.Changed = "security.notice_added", true
	case "signedout":
		page.Notice = "security.notice_signed_out"
	}
	p.render(w, r, http.StatusOK, "security", binding, page)
	return nil
}

// enrolAD binds an enrolment's sealed state to the user and the flow.
func enrolAD(userID, flowID string) string { return "sspr enrol\x00" + userID + "\x00" + flowID }

func (p *Plugin) enrol(w http.ResponseWriter, r *http.Request, sess Session, pr progress, f flows.Flow, en flows.Enroller, binding string) error {
	ctx := r.Context()
	req := flows.EnrolRequest{Env: env{p: p, user: sess.UserID, enrol: true}, UserID: sess.UserID, Account: cmp.Or(pr.user.Username, pr.user.Email, pr.user.ID),
		DisplayName: cmp.Or(pr.user.DisplayName, pr.user.Username, pr.user.Email), Form: r.PostForm, Locale: p.locale(r)}
	var page flows.EnrolPage
	var err error
	if r.Method == http.MethodPost {
		if raw, derr := base64.RawURLEncoding.DecodeString(r.PostForm.Get("state")); derr == nil && len(raw) > 0 {
			if req.State, err = p.keys.open(raw, enrolAD(sess.UserID, f.ID())); err != nil {
				req.State = nil // an old or foreign state: the flow starts over
			}
		}
		// A step may add the factor: its notices are held in the outbox
		// first, so that they go out even if the process dies before the
		// change is recorded (see holdFactorNotices).
		h, herr := p.holdFactorNotices(ctx, r, pr, f, "added")
		if herr != nil {
			return herr
		}
		page, err = en.FinishEnrol(context.WithoutCancel(ctx), req)
		switch {
		case err != nil:
			// It may have added the factor: let the notices go.
			p.settleFactorNotices(ctx, r, pr, f, h, true, "uncertain", "the flow failed; a method may have been added")
		case page.Added:
			p.settleFactorNotices(ctx, r, pr, f, h, true, "ok", f.ID())
		default:
			p.settleFactorNotices(ctx, r, pr, f, h, false, "", "")
		}
	} else {
		page, err = en.StartEnrol(ctx, req)
	}
	if err != nil {
		return internalError(err)
	}
	p.worker.Kick() // a step may have queued a code (flows/sms)
	view := enrolView{Flow: f.ID(), Title: flowTitle(f), Action: p.basePath + "/account/security/" + f.ID() + "/add",
		Error: page.Error, Added: page.Added, Back: p.basePath + "/account/security", Data: page.Data}
	if page.State != nil {
		view.State = base64.RawURLEncoding.EncodeToString(p.keys.seal(page.State, enrolAD(sess.UserID, f.ID())))
	}
	if _, ok := p.scripts[f.ID()]; ok {
		view.Script = p.basePath + "/static/" + f.ID() + ".js"
	}
	status := http.StatusOK
	if page.Error != "" {
		status = http.StatusBadRequest
	}
	p.render(w, r, status, page.Page, binding, view)
	return nil
}

func (p *Plugin) removeFactor(w http.ResponseWriter, r *http.Request, sess Session, pr progress, f flows.Flow, en flows.Enroller) error {
	ctx := r.Context()
	h, err := p.holdFactorNotices(ctx, r, pr, f, "removed")
	if err != nil {
		return err
	}
	err = en.Remove(context.WithoutCancel(ctx), sess.UserID, r.PostForm.Get("factor"))
	switch {
	case errors.Is(err, flows.ErrNoFactor):
		p.settleFactorNotices(ctx, r, pr, f, h, false, "", "")
		return &Error{Kind: KindBadRequest, Status: http.StatusNotFound, Heading: "error.nothing_to_remove.heading",
			Public: "error.nothing_to_remove.message", Link: p.basePath + "/account/security", LinkText: "common.back_to_security"}
	case err != nil:
		p.settleFactorNotices(ctx, r, pr, f, h, true, "uncertain", "the flow failed; a method may have been removed")
		return internalError(err)
	}
	p.settleFactorNotices(ctx, r, pr, f, h, true, "ok", f.ID())
	p.redirect(w, "/account/security", url.Values{"done": {"removed"}})
	return nil
}

// factorData is what the "factor" message template receives as .Data.
type factorData struct {
	Action, Method string
	changedData
}

// heldNotices are the "factor" notices of one change, queued before it and
// held in the outbox for completionHold.
type heldNotices struct {
	action  string
	data    factorData
	ids     []int64
	addrs   []address // ids[i] goes to addrs[i]
	started time.Time // wall clock, as in commitPassword
}

// holdFactorNotices queues the notices of a factor change (action "added"
// or "removed") to every contact address, held in the outbox, before the
// change is made. settleFactorNotices then releases or cancels them; if
// the process dies in between, they go out by themselves when the hold
// ends. So no factor is added or removed without the user being told
// (at worst, after a crash, they hear of a change that did not happen).
func (p *Plugin) holdFactorNotices(ctx context.Context, r *http.Request, pr progress, f flows.Flow, action string) (heldNotices, error) {
	now := p.s.Now()
	h := heldNotices{action: action, started: time.Now(),
		data: factorData{Action: action, Method: flowTitle(f), changedData: p.noticeData(now)}}
	addrs, err := p.addresses(ctx, pr.subject)
	if err != nil {
		return h, internalError(err)
	}
	err = p.atomic(ctx, func(tx store.Tx) error {
		h.ids, h.addrs = h.ids[:0], h.addrs[:0]
		for _, a := range addrs {
			ids, err := p.queueNotices(ctx, tx, now.Add(completionHold), []address{a}, "factor", p.locale(r), h.data)
			if err != nil {
				return err
			}
			for _, id := range ids {
				h.ids, h.addrs = append(h.ids, id), append(h.addrs, a)
			}
		}
		return nil
	})
	if err != nil {
		return h, internalError(err)
	}
	return h, nil
}

// settleFactorNotices records the outcome of a factor change whose notices
// h holds. When changed, it releases them (the addresses are listed again:
// an added phone number hears of itself, a removed one does not) and
// audits "factor.<action>" with outcome and detail; otherwise it cancels
// them. Late (the hold nearly over), the notices go out by themselves. A
// failure is logged: the held notices then go out after the hold.
func (p *Plugin) settleFactorNotices(ctx context.Context, r *http.Request, pr progress, f flows.Flow, h heldNotices, changed bool, outcome, detail string) {
	ctx = context.WithoutCancel(ctx)
	now := p.s.Now()
	var after []address
	if changed {
		var err error
		if after, err = p.addresses(ctx, pr.subject); err != nil {
			after = h.addrs // release what is held
		}
	}
	late := time.Since(h.started) >= completionHold*2/3
	err := p.atomic(ctx, func(tx store.Tx) error {
		for i, id := range h.ids {
			switch {
			case !changed:
				if err := tx.MarkFailed(ctx, id, now, "cancelled: nothing changed", true); err != nil {
					return err
				}
			case !slices.Contains(after, h.addrs[i]):
				if err := tx.MarkFailed(ctx, id, now, "cancelled: the address went with the change", true); err != nil {
					return err
				}
			case !late:
				if err := tx.MarkFailed(ctx, id, now, "", false); err != nil { // due now
					return err
				}
			}
		}
		if !changed {
			return nil
		}
		var added []address
		for _, a := range after {
			if !slices.Contains(h.addrs, a) {
				added = append(added, a)
			}
		}
		if _, err := p.queueNotices(ctx, tx, now, added, "factor", p.locale(r), h.data); err != nil {
			return err
		}
		return p.audit(ctx, tx, r, "factor."+h.action, "", pr.user.ID, outcome, detail)
	})
	if err != nil {
		p.log.ErrorContext(ctx, "sspr: record security change failed; the held notices go out after the hold",
			slog.String("user", pr.user.ID), slog.Any("err", err))
		if changed {
			p.recordUnstored(ctx, r, store.AuditEvent{Event: "factor." + h.action, UserID: pr.user.ID, Outcome: outcome, Detail: detail})
		}
	}
	p.worker.Kick()
}

// signOutOthers ends every session of the signed-in user through the host
// and keeps this browser signed in (through the [SessionRaiser], when the
// host has one). It needs no step-up: it only takes access away.
func (p *Plugin) signOutOthers(w http.ResponseWriter, r *http.Request, sess Session) error {
	ctx := r.Context()
	if p.revoker == nil {
		return errNotFound
	}
	outcome := "ok"
	if err := p.revoker.RevokeSessions(ctx, sess.UserID); err != nil {
		p.log.ErrorContext(ctx, "sspr: sign out other sessions failed", slog.String("user", sess.UserID), slog.Any("err", err))
		outcome = "failed"
	}
	if err := p.atomic(ctx, func(tx store.Tx) error {
		return p.audit(ctx, tx, r, "sessions.revoke", "", sess.UserID, outcome, "other sessions, asked by the user")
	}); err != nil {
		return internalError(err)
	}
	if outcome != "ok" {
		return internalError(errors.New("sspr: revoke sessions failed"))
	}
	if p.raiser != nil {
		if err := p.raiser.RaiseSession(w, r, sess); err != nil {
			p.log.ErrorContext(ctx, "sspr: keep this browser signed in", slog.Any("err", err))
		}
	}
	p.redirect(w, "/account/security", url.Values{"done": {"signedout"}})
	return nil
}
