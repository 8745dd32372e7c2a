package password_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/sspr-go/sspr/plugin/password"
)

func ExamplePolicy_Check() {
	// The zero config takes every default, the embedded common-password
	// list included. Build the policy once and share it.
	policy, err := password.NewPolicy(password.PolicyConfig{})
	if err != nil {
		log.Fatal(err)
	}
	alice := []string{"alice", "alice@example.com", "Alice Liddell"}
	for _, pw := range []string{
		"P@ssw0rd2024!",
		"alice-in-wonderland-2024",
		"correct-horse-battery-staple-42",
	} {
		problems := policy.Check(password.Input{Password: pw, Identifiers: alice, HasMFA: false})
		if problems == nil {
			fmt.Printf("%s: accepted\n", pw)
			continue
		}
		for _, p := range problems {
			fmt.Printf("%s: %s: %s\n", pw, p.Rule, p.Message)
		}
	}
	// Output:
	// P@ssw0rd2024!: too_short: Use at least 15 characters.
	// P@ssw0rd2024!: common: This password is too common. Choose something less predictable.
	// alice-in-wonderland-2024: identifier: Don't use your username or email address in your password.
	// correct-horse-battery-staple-42: accepted
}

func ExampleHasher() {
	ctx := context.Background()
	h, err := password.NewHasher(password.HasherConfig{MaxConcurrent: 2})
	if err != nil {
		log.Fatal(err)
	}
	encoded, err := h.Hash(ctx, "correct-horse-battery-staple-42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(encoded[:31])
	ok, err := h.Verify(ctx, "correct-horse-battery-staple-42", encoded)
	fmt.Println(ok, err)
	ok, err = h.Verify(ctx, "correct-horse-battery-staple-43", encoded)
	fmt.Println(ok, err)
	fmt.Println(h.HistoryParams())
	// Output:
	// $argon2id$v=19$m=19456,t=2,p=1$
	// true <nil>
	// false <nil>
	// argon2id$v=19$m=19456,t=2,p=1$32
}

func ExamplePolicy_CheckBreached() {
	ctx := context.Background()
	// A real host uses password.NewPwnedRange(password.PwnedRangeConfig{});
	// this stand-in knows one breached password and needs no network.
	checker := password.BreachCheckerFunc(func(ctx context.Context, pw string) (bool, error) {
		return pw == "Tr0ub4dor&3-horse-battery", nil
	})
	policy, err := password.NewPolicy(password.PolicyConfig{
		Blocklist: password.NewBlocklist([]string{"letmein"}),
		Breach:    checker,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, pw := range []string{"Tr0ub4dor&3-horse-battery", "correct-horse-battery-staple-42"} {
		prob, err := policy.CheckBreached(ctx, pw)
		switch {
		case errors.Is(err, password.ErrBreachCheckSkipped):
			fmt.Println("check skipped (fail-open); log it and go on")
		case err != nil:
			fmt.Println("check failed (fail-closed); try again later")
		case prob != nil:
			fmt.Printf("%s: %s: %s\n", pw, prob.Rule, prob.Message)
		default:
			fmt.Printf("%s: accepted\n", pw)
		}
	}
	// Output:
	// Tr0ub4dor&3-horse-battery: breached: This password has appeared in a data breach, so attackers may try it. Choose a different one.
	// correct-horse-battery-staple-42: accepted
}
