package password

import (
	"context"
	"errors"
	"fmt"
)

// RuleBreached is the [Problem.Rule] of a password that has appeared in a
// data breach, reported by [Policy.CheckBreached].
const RuleBreached = "breached"

// Errors of [Policy.CheckBreached]. Each wraps the checker's error as well,
// so errors.Is also finds its cause (such as context.DeadlineExceeded).
var (
	// ErrBreachCheckFailed is wrapped by the error of a failed breach check
	// when the policy fails closed (the default): refuse the password change
	// for now and show a "try again later" page.
	ErrBreachCheckFailed = errors.New("password: breach check failed")

	// ErrBreachCheckSkipped is wrapped by the error of a failed breach check
	// when the policy fails open ([PolicyConfig.BreachFailOpen]): log it and
	// accept the password as if it had not been found.
	ErrBreachCheckSkipped = errors.New("password: breach check failed, skipped (fail-open)")
)

// BreachChecker tells whether a password has appeared in a data breach.
// [PwnedRange] is the implementation for the Have I Been Pwned "range" API
// and compatible services.
//
// Implementations must never send the password, nor its full hash, anywhere:
// use k-anonymity (send a short prefix of the hash and match the rest
// locally) or a local copy of the data. They must be safe for concurrent
// use, honour ctx, and return an error, never false, when they cannot tell
// (an outage, a timeout, a malformed answer): [Policy.CheckBreached] decides
// whether that fails open or closed. No error may contain the password or
// its hash.
type BreachChecker interface {
	// Breached reports whether password, exactly as typed (the bytes that
	// will be set), has appeared in a data breach.
	Breached(ctx context.Context, password string) (bool, error)
}

// BreachCheckerFunc adapts a function to a [BreachChecker], for a host's own
// check or a test double.
type BreachCheckerFunc func(ctx context.Context, password string) (bool, error)

// Breached calls f(ctx, password).
func (f BreachCheckerFunc) Breached(ctx context.Context, password string) (bool, error) {
	return f(ctx, password)
}

// CheckBreached asks the policy's [PolicyConfig.Breach] checker whether
// password has appeared in a data breach. Call it after [Policy.Check] has
// accepted the password (it may reach the network) and before the
// password-history check (which costs an argon2id computation). Pass the
// password exactly as typed.
//
// It returns:
//
//   - (nil, nil) when no checker is configured or the password was not
//     found;
//   - a [Problem] with Rule [RuleBreached] and a nil error when it was
//     found: refuse the password and show the reason;
//   - (nil, err) when the checker failed. With BreachFailOpen, err wraps
//     [ErrBreachCheckSkipped]: log it (at Warn) and accept the password.
//     Otherwise err wraps [ErrBreachCheckFailed]: refuse the change for now.
//     Both also wrap the checker's error. When ctx is done the failure is
//     never skipped: err wraps ErrBreachCheckFailed and ctx.Err().
//
// A caller that treats every non-nil error as a failure therefore fails
// closed. The error never contains the password.
func (p *Policy) CheckBreached(ctx context.Context, password string) (*Problem, error) {
	if p.breach == nil {
		return nil, nil
	}
	breached, err := p.breach.Breached(ctx, password)
	if err != nil {
		// A request that has ended cannot go on to set the password, so its
		// failure is never skipped.
		if ctxErr := ctx.Err(); ctxErr != nil {
			if errors.Is(err, ctxErr) {
				return nil, fmt.Errorf("%w: %w", ErrBreachCheckFailed, err)
			}
			return nil, fmt.Errorf("%w: %w: %w", ErrBreachCheckFailed, err, ctxErr)
		}
		if p.breachFailOpen {
			return nil, fmt.Errorf("%w: %w", ErrBreachCheckSkipped, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrBreachCheckFailed, err)
	}
	if !breached {
		return nil, nil
	}
	return &Problem{
		Rule:    RuleBreached,
		Message: "This password has appeared in a data breach, so attackers may try it. Choose a different one.",
	}, nil
}

// ChecksBreaches reports whether the policy has a breach checker
// ([PolicyConfig.Breach]).
func (p *Policy) ChecksBreaches() bool { return p.breach != nil }

// BreachFailOpen reports whether a failed breach check accepts the password
// ([PolicyConfig.BreachFailOpen]).
func (p *Policy) BreachFailOpen() bool { return p.breachFailOpen }
