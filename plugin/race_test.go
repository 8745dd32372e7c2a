package plugin_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pqtotp "github.com/pquerna/otp/totp"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/flows/email"
	"github.com/sspr-go/sspr/flows/flowtest"
	"github.com/sspr-go/sspr/flows/recoverycodes"
	"github.com/sspr-go/sspr/flows/totp"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/plugin/store/postgres"
	"github.com/sspr-go/sspr/plugin/store/sqlite"
)

// 100 concurrent redemptions of one secret — a link, an emailed code, a
// recovery code, a TOTP step — on SQLite and on PostgreSQL: exactly one
// succeeds.

const racers = 100

func raceStores(t *testing.T) map[string]func(t *testing.T) store.Store {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	return map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			st, err := sqlite.Config{Path: filepath.Join(t.TempDir(), "race.db")}.Open(t.Context(), quiet)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
		"postgres": func(t *testing.T) store.Store {
			st, err := postgres.Config{URL: pgSchemaURL(t), MaxConns: 16}.Open(t.Context(), quiet)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
}

// race runs fn racers times at once and returns how many succeeded; every
// failure must match one of the allowed errors.
func race(t *testing.T, fn func(i int) error, allowed ...error) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			err := fn(i)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
				return
			}
			for _, a := range allowed {
				if errors.Is(err, a) {
					return
				}
			}
			t.Errorf("racer %d: unexpected error %v", i, err)
		})
	}
	close(start)
	wg.Wait()
	return wins
}

func newJourney(t *testing.T, st store.Store, env *flowtest.Env, id, user string) {
	t.Helper()
	now := env.Now()
	if err := st.CreateJourney(t.Context(), store.Journey{ID: id, UserID: user, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

func TestHundredConcurrentRedemptions(t *testing.T) {
	for name, open := range raceStores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			env := flowtest.NewEnv(time.Now())
			alice := flows.Subject{UserID: "alice", Emails: []string{"alice@example.com"}}
			mail, _ := email.New(email.Config{})

			// One journey with one emailed link and code.
			newJourney(t, st, env, "j-mail", "alice")
			if err := st.Atomic(t.Context(), func(tx store.Tx) error {
				return mail.Begin(t.Context(), flows.BeginRequest{Tx: tx, Env: env, JourneyID: "j-mail", Subject: alice, Option: flows.Option{Flow: "email", Ref: "0"}})
			}); err != nil {
				t.Fatal(err)
			}
			d := env.Queued()[0].Data.(email.ResetData)
			u, _ := url.Parse(d.Link)
			token := u.Query().Get("token")

			t.Run("link", func(t *testing.T) {
				wins := race(t, func(int) error {
					_, err := mail.RedeemLink(t.Context(), st, env, token)
					return err
				}, flows.ErrUsed)
				if wins != 1 {
					t.Fatalf("%d of %d redemptions of one link succeeded", wins, racers)
				}
			})

			// A second journey for the code (the link above used the first).
			newJourney(t, st, env, "j-code", "alice")
			if err := st.Atomic(t.Context(), func(tx store.Tx) error {
				return mail.Begin(t.Context(), flows.BeginRequest{Tx: tx, Env: env, JourneyID: "j-code", Subject: alice, Option: flows.Option{Flow: "email", Ref: "0"}})
			}); err != nil {
				t.Fatal(err)
			}
			code := env.Queued()[1].Data.(email.ResetData).Code
			t.Run("emailed code", func(t *testing.T) {
				wins := race(t, func(int) error {
					return mail.Verify(t.Context(), flows.VerifyRequest{Tx: st, Env: env, JourneyID: "j-code", Subject: alice, Form: url.Values{"code": {code}}})
				}, flows.ErrUsed)
				if wins != 1 {
					t.Fatalf("%d of %d uses of one code succeeded", wins, racers)
				}
			})

			// Recovery codes: one code presented in 100 journeys at once.
			rc, err := recoverycodes.New(recoverycodes.Config{Store: st})
			if err != nil {
				t.Fatal(err)
			}
			codes, err := rc.Generate(t.Context(), st, env, "alice")
			if err != nil {
				t.Fatal(err)
			}
			for i := range racers {
				id := fmt.Sprintf("j-rc-%d", i)
				newJourney(t, st, env, id, "alice")
				if err := rc.Begin(t.Context(), flows.BeginRequest{Tx: st, Env: env, JourneyID: id, Subject: alice}); err != nil {
					t.Fatal(err)
				}
			}
			t.Run("recovery code", func(t *testing.T) {
				wins := race(t, func(i int) error {
					return rc.Verify(t.Context(), flows.VerifyRequest{Tx: st, Env: env, JourneyID: fmt.Sprintf("j-rc-%d", i), Subject: alice, Form: url.Values{"code": {codes[0]}}})
				}, flows.ErrWrongResponse)
				if wins != 1 {
					t.Fatalf("%d of %d uses of one recovery code succeeded", wins, racers)
				}
			})

			// TOTP: one code (one time step) in 100 journeys at once.
			tf, err := totp.New(totp.Config{Store: st, Keys: [][]byte{[]byte("race test key exactly 32 bytes!!")}, Now: env.Now})
			if err != nil {
				t.Fatal(err)
			}
			const secret = "JBSWY3DPEHPK3PXP"
			if _, err := tf.AddSecret(t.Context(), st, "alice", "app", secret); err != nil {
				t.Fatal(err)
			}
			for i := range racers {
				id := fmt.Sprintf("j-totp-%d", i)
				newJourney(t, st, env, id, "alice")
				if err := tf.Begin(t.Context(), flows.BeginRequest{Tx: st, Env: env, JourneyID: id, Subject: alice}); err != nil {
					t.Fatal(err)
				}
			}
			now, _ := pqtotp.GenerateCode(secret, env.Now())
			t.Run("TOTP step", func(t *testing.T) {
				wins := race(t, func(i int) error {
					return tf.Verify(t.Context(), flows.VerifyRequest{Tx: st, Env: env, JourneyID: fmt.Sprintf("j-totp-%d", i), Subject: alice, Form: url.Values{"code": {now}}})
				}, flows.ErrWrongResponse)
				if wins != 1 {
					t.Fatalf("%d of %d uses of one TOTP code succeeded", wins, racers)
				}
			})
		})
	}
}
