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

// progress is where a journey stands against the policy.
type progress struct {
	// user and subject describe the journey's user (zero for a decoy).
	user    User
	subject flows.Subject
	// done means the policy is met: the password may be set.
	done bool
	// next lists what may be verified next, in the configured order of
	// flows; empty when done, or when the user cannot meet the policy.
	next []candidate
	// hasMFA reports whether the user has a bound authenticator.
	hasMFA bool
}

// progress evaluates the policy of DESIGN.md for journey j:
//
//   - one contact channel first;
//   - then, when the user has any bound authenticator, one of those (a
//     reset never bypasses MFA);
//   - then more methods until MethodsRequired (2 for administrators) is
//     reached, of another kind than those verified when
//     RequireDifferentKinds is set (always for administrators);
//   - knowledge flows never count for administrators and never alone.
//
// A decoy journey (no user) is never done and has nothing next.
func (p *Plugin) progress(ctx context.Context, j store.Journey) (progress, error) {
	var pr progress
	if j.UserID == "" {
		return pr, nil
	}
	var err error
	if pr.user, pr.subject, err = p.userSubject(ctx, j.UserID); err != nil {
		return pr, err
	}
	admin := false
	if p.admins != nil {
		if admin, err = p.admins.IsAdmin(ctx, j.UserID); err != nil {
			return pr, internalError(fmt.Errorf("sspr: directory: is admin: %w", err))
		}
	}
	required, different := p.s.MethodsRequired, p.s.RequireDifferentKinds
	if admin {
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
	for _, f := range p.s.Flows {
		opts, err := f.Options(ctx, pr.subject)
		if err != nil {
			return pr, internalError(fmt.Errorf("sspr: %s options: %w", f.ID(), err))
		}
		if len(opts) == 0 {
			continue
		}
		if f.Kind() == flows.KindBound {
			pr.hasMFA = true
		}
		if slices.Contains(j.Verified, f.ID()) || (admin && f.Kind() == flows.KindKnowledge) {
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
	return pr, nil
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
