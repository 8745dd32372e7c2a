package plugin

import (
	"context"
	"fmt"
	"slices"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/plugin/store"
)

// candidate is one way to continue a journey: a flow and the option of it
// the user would use.
type candidate struct {
	flow   flows.Flow
	option flows.Option
}

// standing is what the policy reads about a user, from the host and the
// store: the directory's record, the contacts, whether the user is an
// administrator and every flow's options. It does not depend on what a
// journey has verified, so one read serves a journey before and after it
// proves a method ([Plugin.progressAfter]) and every journey of the same
// user within one request.
type standing struct {
	// userID is the user the standing was read for ("" for none).
	userID string
	// user and subject describe the user (zero for a decoy).
	user    User
	subject flows.Subject
	admin   bool
	// options holds each flow's options, in the order of Config.Flows.
	options [][]flows.Option
}

// progress is where a journey stands against the policy.
type progress struct {
	// standing is what the policy read; its user and subject describe the
	// journey's user (zero for a decoy).
	standing
	// done means the policy is met: the password may be set.
	done bool
	// next lists what may be verified next, in the configured order of
	// flows; empty when done, or when the user cannot meet the policy.
	next []candidate
	// hasMFA reports whether the user has a bound authenticator.
	hasMFA bool
}

// progress reads the standing of journey j's user (a directory User call,
// the host's contacts and every flow's options) and evaluates the policy
// for j. Call it once per request: [Plugin.evaluate] and
// [Plugin.progressAfter] derive other states of the same user from its
// result without any I/O.
//
// A decoy journey (no user) is never done and has nothing next.
func (p *Plugin) progress(ctx context.Context, j store.Journey) (progress, error) {
	if j.UserID == "" {
		p.decoyStanding(ctx)
		return progress{}, nil
	}
	st, err := p.standing(ctx, j.UserID)
	if err != nil {
		return progress{}, err
	}
	return p.evaluate(j, st), nil
}

// decoyStanding makes the reads a real user's standing makes (the
// directory's User, contacts and IsAdmin, every flow's Options), for
// [DecoyUserID], and throws the results away, errors included: a decoy
// journey's pages must cost what a known user's do, or their timing would
// tell the two apart.
func (p *Plugin) decoyStanding(ctx context.Context) {
	u, s := p.decoyUserSubject(ctx)
	_, _ = p.standingOf(ctx, DecoyUserID, u, s)
}

// decoyUserSubject makes the host calls [Plugin.userSubject] makes (the
// directory's User, the contacts), for [DecoyUserID], and returns the
// user and subject a decoy's further reads use; the answers themselves
// are thrown away.
func (p *Plugin) decoyUserSubject(ctx context.Context) (User, flows.Subject) {
	u, err := p.s.Directory.User(ctx, DecoyUserID)
	if err != nil {
		u = User{}
	}
	u.ID = DecoyUserID
	s, _ := p.subject(ctx, u)
	s.UserID = DecoyUserID
	return u, s
}

// standing reads what the policy needs about userID.
func (p *Plugin) standing(ctx context.Context, userID string) (standing, error) {
	u, s, err := p.userSubject(ctx, userID)
	if err != nil {
		return standing{}, err
	}
	return p.standingOf(ctx, userID, u, s)
}

// standingOf completes the standing of userID, whom the caller already
// read from the directory as u and described to the flows as s: it asks
// the host whether the user is an administrator and reads every flow's
// options.
func (p *Plugin) standingOf(ctx context.Context, userID string, u User, s flows.Subject) (standing, error) {
	st := standing{userID: userID, user: u, subject: s, options: make([][]flows.Option, len(p.s.Flows))}
	if p.admins != nil {
		admin, err := p.admins.IsAdmin(ctx, userID)
		if err != nil {
			return standing{}, internalError(fmt.Errorf("sspr: directory: is admin: %w", err))
		}
		st.admin = admin
	}
	for i, f := range p.s.Flows {
		opts, err := f.Options(ctx, s)
		if err != nil {
			return standing{}, internalError(fmt.Errorf("sspr: %s options: %w", f.ID(), err))
		}
		st.options[i] = opts
	}
	return st, nil
}

// progressAfter is the progress of journey j once it has proved f, derived
// from pr, the progress read for j: the user's standing is the same, only
// j.Verified grows. It does no I/O.
func (p *Plugin) progressAfter(j store.Journey, f flows.Flow, pr progress) progress {
	j.Verified = append(slices.Clone(j.Verified), f.ID())
	return p.evaluate(j, pr.standing)
}

// evaluate applies the policy of DESIGN.md to journey j of the user st
// describes, without any I/O:
//
//   - one contact channel first;
//   - then, when the user has any bound authenticator, one of those (a
//     reset never bypasses MFA);
//   - then more methods until MethodsRequired (2 for administrators) is
//     reached, of another kind than those verified when
//     RequireDifferentKinds is set (always for administrators);
//   - knowledge flows never count for administrators and never alone.
//
// A decoy journey (no user), or a standing read for another user than
// j's, is never done and has nothing next.
func (p *Plugin) evaluate(j store.Journey, st standing) progress {
	if j.UserID == "" || st.userID != j.UserID {
		return progress{}
	}
	pr := progress{standing: st}
	required, different := p.s.MethodsRequired, p.s.RequireDifferentKinds
	if st.admin {
		required, different = max(required, 2), true
	}
	stepUp := j.Kind == store.KindStepUp
	if stepUp {
		// A step-up proves one fresh factor: a bound one when the user has
		// any, else a contact channel; or the provider's word (OIDC).
		required, different = 1, false
		if slices.Contains(j.Verified, oidcFlowID) {
			pr.done = true
		}
	}

	verified := map[flows.Kind]int{}
	for _, id := range j.Verified {
		if f, ok := p.byID[id]; ok {
			verified[f.Kind()]++
		} else if id == ticketFlowID {
			// An administrator's ticket stands in for the bound factors the
			// user lost; the contact channel must still be proved.
			verified[flows.KindBound]++
		}
	}
	byKind := map[flows.Kind][]candidate{}
	for i, f := range p.s.Flows {
		var opts []flows.Option
		if i < len(st.options) {
			opts = st.options[i]
		}
		if len(opts) == 0 {
			continue
		}
		if f.Kind() == flows.KindBound {
			pr.hasMFA = true
		}
		if slices.Contains(j.Verified, f.ID()) || (st.admin && f.Kind() == flows.KindKnowledge) {
			continue
		}
		byKind[f.Kind()] = append(byKind[f.Kind()], candidate{flow: f, option: opts[0]})
	}

	switch {
	case pr.done:
	case stepUp && p.stepUp != nil:
		// Step-up through the provider (Config.StepUp): only its word
		// counts; sspr's own pages must not stand in for prompt=login,
		// max_age and acr_values.
	case stepUp && pr.hasMFA && verified[flows.KindBound] == 0:
		pr.next = byKind[flows.KindBound]
	case stepUp && !pr.hasMFA && verified[flows.KindChannel] == 0:
		pr.next = byKind[flows.KindChannel]
	case stepUp:
		pr.done = true
	case verified[flows.KindChannel] == 0:
		pr.next = byKind[flows.KindChannel]
	case pr.hasMFA && verified[flows.KindBound] == 0:
		pr.next = byKind[flows.KindBound]
	case len(j.Verified) < required:
		for _, k := range []flows.Kind{flows.KindChannel, flows.KindBound, flows.KindKnowledge} {
			if different && verified[k] > 0 {
				continue
			}
			pr.next = append(pr.next, byKind[k]...)
		}
	default:
		pr.done = true
	}
	return pr
}

// find returns the candidate of flow id, if it is among next.
func (pr progress) find(id string) (candidate, bool) {
	for _, c := range pr.next {
		if c.flow.ID() == id {
			return c, true
		}
	}
	return candidate{}, false
}
