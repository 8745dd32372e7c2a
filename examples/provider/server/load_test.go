package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sspr-go/sspr/examples/provider/server"
	"github.com/sspr-go/sspr/plugin"
	"github.com/sspr-go/sspr/plugin/notify/smtptest"
)

func TestLoadTestNames(t *testing.T) {
	if got, want := server.LoadTestUsername(49), "user00049"; got != want {
		t.Errorf("LoadTestUsername(49) = %q, want %q", got, want)
	}
	if got, want := server.LoadTestEmail(0), "user00000@example.test"; got != want {
		t.Errorf("LoadTestEmail(0) = %q, want %q", got, want)
	}
}

func TestSeedUsersConfig(t *testing.T) {
	tests := []struct {
		name string
		n    int
		want string
	}{
		{"negative", -1, "server: config: field 'SeedUsers': must be between 0 and 100000"},
		{"too many", server.MaxSeedUsers + 1, "server: config: field 'SeedUsers': must be between 0 and 100000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := server.New(t.Context(), server.Config{DataDir: t.TempDir(), SeedUsers: tt.n, Logger: slog.New(slog.DiscardHandler)})
			if err == nil || err.Error() != tt.want {
				t.Errorf("New: err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestSeedUsers seeds 50 load-test users: the last one signs in with the
// published password, the 51st does not exist, and a second start on the
// same data folder creates nothing and keeps a changed password.
func TestSeedUsers(t *testing.T) {
	dir := t.TempDir()
	seed := func(c *server.Config) { c.DataDir = dir; c.SeedUsers = 50 }

	f := newFixture(t, seed)
	idt, _ := authorize(t, f, server.LoadTestEmail(49), server.LoadTestPassword)
	if idt.Subject != server.LoadTestUsername(49) {
		t.Errorf("sub = %q, want %q", idt.Subject, server.LoadTestUsername(49))
	}
	d := f.srv.Directory()
	if _, err := d.FindUser(t.Context(), server.LoadTestUsername(50)); !errors.Is(err, plugin.ErrUserNotFound) {
		t.Errorf("FindUser(%s): err = %v, want ErrUserNotFound", server.LoadTestUsername(50), err)
	}
	const changed = "a new password for the seventh load-test user"
	if err := d.SetPassword(t.Context(), server.LoadTestUsername(7), changed); err != nil {
		t.Fatal(err)
	}
	// The first fixture keeps running until the test ends; a second server
	// on the same folder seeds again, which must change nothing.
	again := newFixture(t, seed)
	u, err := again.srv.Directory().FindUser(t.Context(), server.LoadTestUsername(0))
	if err != nil || u.Email != server.LoadTestEmail(0) {
		t.Fatalf("FindUser(user00000) after re-seeding: %+v, %v", u, err)
	}
	authorize(t, again, server.LoadTestUsername(7), changed)
	authorize(t, again, server.LoadTestUsername(49), server.LoadTestPassword)
}

// TestDisableRateLimits starts 100 resets from one address: with the rate
// limits on sspr answers 429 before the 100th, with them off every start
// goes through.
func TestDisableRateLimits(t *testing.T) {
	for _, tt := range []struct {
		name     string
		disabled bool
	}{
		{"on", false},
		{"off", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *server.Config) { c.DisableRateLimits = tt.disabled })
			c := newBrowser(t, "")
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			start := get(t, c, f.issuer+"/recovery/")
			form := start.hiddenFields()
			if form.Get("csrf") == "" {
				t.Fatalf("start page has no csrf field:\n%s", start.body)
			}
			form.Set("identifier", "nobody@example.test")
			// The cookie and the CSRF token of the start page serve every
			// POST, as in examples/bench: keep sending the first cookie.
			cookies := c.Jar.Cookies(start.resp.Request.URL)
			c.Jar = nil
			body := form.Encode()
			statuses := map[int]int{}
			for range 100 {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.issuer+"/recovery/", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", f.issuer)
				for _, ck := range cookies {
					req.AddCookie(ck)
				}
				statuses[do(t, c, req).resp.StatusCode]++
			}
			if tt.disabled {
				if statuses[http.StatusSeeOther] != 100 {
					t.Errorf("rate limits off: statuses %v, want 100 × 303", statuses)
				}
				return
			}
			if statuses[http.StatusTooManyRequests] == 0 || statuses[http.StatusSeeOther]+statuses[http.StatusTooManyRequests] != 100 {
				t.Errorf("rate limits on: statuses %v, want 303s then 429s", statuses)
			}
		})
	}
}

// TestSSPRStoreOnPostgres runs the forgot-password journey with sspr's
// store in PostgreSQL (SSPR_DATABASE_URL); it skips without a test server.
func TestSSPRStoreOnPostgres(t *testing.T) {
	base := os.Getenv("SSPR_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("SSPR_TEST_POSTGRES_URL is not set: the PostgreSQL tests need a server (.ci/run starts one)")
	}
	mail := smtptest.NewServer(t)
	f := newFixture(t, func(c *server.Config) { c.SMTP = mail.URL(); c.DatabaseURL = pgTestSchema(t, base) })
	c := newBrowser(t, testRedirectURI)
	_, _, check := forgot(t, f, c, server.DemoEmail)
	msg, err := mail.Wait(t.Context(), server.DemoEmail, 1)
	if err != nil {
		t.Fatal(err)
	}
	code := resetCode.FindStringSubmatch(msg.Text)
	if code == nil {
		t.Fatalf("no code in %s", msg.Text)
	}
	choose := submit(t, c, f.issuer, check, url.Values{"code": {code[1]}})
	done := submit(t, c, f.issuer, choose, url.Values{"password": {"harbour-lights-at-dawn"}, "confirm": {"harbour-lights-at-dawn"}})
	if !strings.Contains(done.body, "Your password was changed") {
		t.Fatalf("journey on PostgreSQL:\n%s", done.body)
	}
}

// pgTestSchema creates a fresh schema and returns base with it as the
// search_path; the schema is dropped when the test ends.
func pgTestSchema(t *testing.T, base string) string {
	t.Helper()
	buf := make([]byte, 6)
	_, _ = rand.Read(buf)
	schema := "sspr_ex_" + hex.EncodeToString(buf)
	conn, err := pgx.Connect(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), base); err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
