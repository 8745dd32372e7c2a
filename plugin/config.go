package plugin

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/plugin/notify"
	"github.com/sspr-go/sspr/plugin/password"
	"github.com/sspr-go/sspr/plugin/store"
)

// Config configures a [Plugin]. The zero value of every optional field is
// its safest setting; [New] copies the config, fills defaults and validates
// every field, and never changes the caller's value.
type Config struct {
	// BaseURL is the absolute external URL where the host mounts the
	// plugin, for example "https://login.example.com/recovery". Every link
	// sspr builds (in emails, redirects) starts with it; sspr never builds a
	// URL from the request's Host header. It must be https, except for
	// loopback hosts (localhost, 127.0.0.1, ::1). Required.
	BaseURL string

	// Directory is the host's user directory. Required.
	Directory Directory

	// Store keeps journeys, challenges, counters, the outbox and the audit
	// trail. Required; plugin/store/sqlite is the embedded default.
	Store store.Store

	// Flows are the verification methods offered, in order of preference.
	// At least one must be a contact channel ([flows.KindChannel]). Flow IDs
	// must be unique. Required.
	Flows []flows.Flow

	// Sender delivers queued messages (the outbox worker started by
	// [Plugin.Run] calls it, for up to 8 messages at once, so it must be
	// safe for concurrent use). Required; see plugin/notify for SMTP.
	Sender notify.Sender

	// Keys are secret keys of at least 32 bytes each. The first signs and
	// encrypts new cookies and keys new hashes; all of them are accepted
	// when reading, so keys can rotate. Required.
	Keys [][]byte

	// MethodsRequired is the number of verification methods a journey
	// needs, 1 or 2. Whatever it says, a journey needs one contact channel
	// and, when the user has a bound authenticator (TOTP, passkey, recovery
	// codes), one of those; administrators always need 2. Default: 1.
	MethodsRequired int

	// RequireDifferentKinds makes the methods beyond the first count only
	// when they are of another kind (channel, bound, knowledge) than those
	// already verified. Always on for administrators. Default: false.
	RequireDifferentKinds bool

	// HelpURL is where users who cannot meet the policy (for example an
	// administrator without a second factor) are sent for help. Default:
	// none (the page only tells them to contact their helpdesk).
	HelpURL string

	// Sessions gives sspr the host's login session, which enables the
	// signed-in pages (<base>/account/password). When it also implements
	// [SessionRaiser], an in-process step-up raises the host session.
	// Default: nil (no signed-in pages).
	Sessions SessionSource

	// StepUp makes signed-in pages demand a fresh second factor through
	// the host's OIDC provider instead of sspr's own verification pages.
	// Default: nil (in-process step-up with the configured Flows).
	StepUp *OIDCStepUp

	// StepUpMaxAge is how old a step-up may be for a password change or an
	// enrolment change. Default: 5 minutes; at most 1 hour.
	StepUpMaxAge time.Duration

	// AccountURL is the host's account page, where signed-in pages lead
	// back to. Default: SignInURL.
	AccountURL string

	// SignInURL is where the done page sends the user to sign in with the
	// new password. Default: the origin of BaseURL followed by "/".
	SignInURL string

	// ReturnToAllowList lists URL prefixes that a journey's return_to
	// parameter may point to (scheme, host and path prefix must match). A
	// return_to outside the list is ignored and SignInURL used instead.
	// Default: none.
	ReturnToAllowList []string

	// Locale picks the language of a request (a BCP 47 tag, matched
	// against the catalogs in templates/messages), overriding the
	// browser's Accept-Language; "" means no choice. Default: nil
	// (Accept-Language decides; English when nothing matches).
	Locale func(r *http.Request) string

	// ProductName is shown on pages and in messages. A name other than
	// the default is also a context word of the password policy
	// ([password.PolicyConfig.ContextWords]): a new password may not
	// contain it whole, nor its distinctive words ("Contoso Account Center"
	// refuses "contoso", not "account"). Default: "Account recovery".
	ProductName string

	// LogoURL is the product's logo shown above every page: a path on the
	// host (such as "/static/logo.svg") or an absolute URL the page's CSP
	// allows (img-src 'self'). Default: none.
	LogoURL string

	// Templates overrides the embedded templates: any file present in it
	// replaces the default of the same path (see package templates). A
	// missing or broken template makes New fail. Default: nil (the
	// embedded defaults).
	Templates fs.FS

	// Password configures the password policy. Zero fields take the
	// defaults documented on [password.PolicyConfig].
	Password password.PolicyConfig

	// Hasher derives password-history keys (and hashes passwords for hosts
	// that use it). Default: [password.NewHasher] with its defaults.
	Hasher *password.Hasher

	// JourneyTTL is how long a journey stays usable. Default: 15 minutes;
	// at most 1 hour.
	JourneyTTL time.Duration

	// Limits sets the rate limits. Zero fields take their defaults.
	Limits Limits

	// NotifyResetRequests sends "someone asked to reset your password" to
	// every contact address of a user except the one the code goes to,
	// when a journey starts for them. It warns a user whose secondary
	// address or phone someone else controls. Off by default: a known
	// account's start then queues more messages than an unknown one's,
	// which a patient attacker may time.
	NotifyResetRequests bool

	// InsecureDisableRateLimits turns every rate limit off. For load tests
	// only: it logs a warning at start-up and with every page it serves.
	InsecureDisableRateLimits bool

	// ClientIP returns the client address of a request, for rate limits and
	// the audit trail. Default: the host part of r.RemoteAddr. Set it when
	// a trusted proxy forwards the address; sspr never trusts forwarding
	// headers on its own.
	ClientIP func(r *http.Request) string

	// AuditRetention is how long audit events are kept. Default: 90 days.
	AuditRetention time.Duration

	// Logger receives sspr's logs; it never receives secrets. Default:
	// slog.Default(), read once in New.
	Logger *slog.Logger

	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Limits are the rate limits of a plugin. Each is a sliding window counted
// in the store, so every instance sharing the store shares them.
type Limits struct {
	// StartsPerIP caps journeys started from one client address. Over the
	// limit sspr answers 429 with Retry-After. Default: 30 per 10 minutes.
	StartsPerIP Limit
	// StartsPerAccount caps journeys started for one account (or one
	// unknown identifier). Over the limit sspr answers exactly as usual and
	// sends nothing. Default: 5 per hour.
	StartsPerAccount Limit
	// FailuresPerAccount caps wrong codes for one account. Default: 100 per
	// 24 hours.
	FailuresPerAccount Limit
	// VerifiesPerIP caps code and link submissions from one client address.
	// Over the limit sspr answers 429. Default: 60 per 10 minutes.
	VerifiesPerIP Limit
	// MessagesPerDestination caps the codes and links sent to one address
	// or phone number (an SMS costs money; a flood of them is toll fraud),
	// whichever journey or enrolment asks. Over the limit the message is
	// dropped and the journey answers as usual. Default: 10 per hour.
	MessagesPerDestination Limit
}

// Limit is "N events per Window".
type Limit struct {
	// N is the number of events allowed per window.
	N int
	// Window is the length of the sliding window.
	Window time.Duration
}

// Defaults of [Config].
const (
	DefaultJourneyTTL     = 15 * time.Minute
	DefaultStepUpMaxAge   = 5 * time.Minute
	DefaultAuditRetention = 90 * 24 * time.Hour
	DefaultProductName    = "Account recovery"
	maxJourneyTTL         = time.Hour
	minKeyLength          = 32
)

func defaultLimits() Limits {
	return Limits{
		StartsPerIP:        Limit{N: 30, Window: 10 * time.Minute},
		StartsPerAccount:   Limit{N: 5, Window: time.Hour},
		FailuresPerAccount: Limit{N: 100, Window: 24 * time.Hour},
		VerifiesPerIP:      Limit{N: 60, Window: 10 * time.Minute},
		// An email journey sends at most 1 + MaxResends (3) messages and an
		// account starts at most 5 per hour by default.
		MessagesPerDestination: Limit{N: 10, Window: time.Hour},
	}
}

// settings is a validated copy of a Config with defaults filled in.
type settings struct {
	Config
	base      *url.URL
	signIn    *url.URL
	allowList []*url.URL
	secure    bool
}

func fieldError(field, format string, args ...any) error {
	return fmt.Errorf("sspr: config: field '%s': %s", field, fmt.Sprintf(format, args...))
}

// validate copies cfg, fills defaults and reports every bad field.
func validate(cfg Config) (*settings, error) {
	s := &settings{Config: cfg}
	s.Keys = append([][]byte(nil), cfg.Keys...)
	s.Flows = append([]flows.Flow(nil), cfg.Flows...)
	s.ReturnToAllowList = append([]string(nil), cfg.ReturnToAllowList...)
	var errs []error

	if cfg.BaseURL == "" {
		errs = append(errs, fieldError("BaseURL", "is required"))
	} else if u, err := parseAbsURL(cfg.BaseURL); err != nil {
		errs = append(errs, fieldError("BaseURL", "%v", err))
	} else if u.Scheme != "https" && !isLoopback(u.Hostname()) {
		errs = append(errs, fieldError("BaseURL", "must be https (plain http is allowed only for loopback hosts)"))
	} else {
		u.Path = strings.TrimSuffix(u.Path, "/")
		s.base = u
		s.secure = u.Scheme == "https"
	}

	if cfg.Directory == nil {
		errs = append(errs, fieldError("Directory", "is required"))
	}
	if cfg.Store == nil {
		errs = append(errs, fieldError("Store", "is required"))
	}
	if cfg.Sender == nil {
		errs = append(errs, fieldError("Sender", "is required"))
	}

	if len(cfg.Flows) == 0 {
		errs = append(errs, fieldError("Flows", "needs at least one flow"))
	} else {
		seen := map[string]bool{}
		channel := false
		for i, f := range cfg.Flows {
			if f == nil {
				errs = append(errs, fieldError("Flows", "entry %d is nil", i))
				continue
			}
			id := f.ID()
			if !validFlowID(id) {
				errs = append(errs, fieldError("Flows", "entry %d has an invalid ID %q (use a-z, 0-9 and -)", i, id))
			}
			if id == oidcFlowID || id == ticketFlowID || id == revokeChannel || id == attemptsChannel {
				// The engine's own proofs and jobs use these names.
				errs = append(errs, fieldError("Flows", "entry %d uses the reserved ID %q", i, id))
			}
			if seen[id] {
				errs = append(errs, fieldError("Flows", "ID %q appears twice", id))
			}
			seen[id] = true
			if f.Kind() == flows.KindChannel {
				channel = true
			}
		}
		if !channel {
			errs = append(errs, fieldError("Flows", "needs at least one contact channel flow (email or SMS)"))
		}
	}

	if len(cfg.Keys) == 0 {
		errs = append(errs, fieldError("Keys", "needs at least one key"))
	}
	for i, k := range cfg.Keys {
		if len(k) < minKeyLength {
			errs = append(errs, fieldError("Keys", "key %d has %d bytes, needs at least %d", i, len(k), minKeyLength))
		}
	}

	if cfg.SignInURL != "" {
		u, err := parseAbsURL(cfg.SignInURL)
		if err != nil {
			errs = append(errs, fieldError("SignInURL", "%v", err))
		} else {
			s.signIn = u
		}
	} else if s.base != nil {
		s.signIn = &url.URL{Scheme: s.base.Scheme, Host: s.base.Host, Path: "/"}
	}
	for i, raw := range cfg.ReturnToAllowList {
		u, err := parseAbsURL(raw)
		if err != nil {
			errs = append(errs, fieldError("ReturnToAllowList", "entry %d: %v", i, err))
			continue
		}
		s.allowList = append(s.allowList, u)
	}

	switch cfg.MethodsRequired {
	case 0:
		s.MethodsRequired = 1
	case 1, 2:
	default:
		errs = append(errs, fieldError("MethodsRequired", "must be 1 or 2"))
	}
	switch {
	case cfg.StepUpMaxAge == 0:
		s.StepUpMaxAge = DefaultStepUpMaxAge
	case cfg.StepUpMaxAge < 0 || cfg.StepUpMaxAge > time.Hour:
		errs = append(errs, fieldError("StepUpMaxAge", "must be between 0 and 1h"))
	}
	if su := cfg.StepUp; su != nil {
		c := *su
		if c.Issuer == "" {
			errs = append(errs, fieldError("StepUp.Issuer", "is required"))
		} else if _, err := parseAbsURL(c.Issuer); err != nil {
			errs = append(errs, fieldError("StepUp.Issuer", "%v", err))
		}
		if c.ClientID == "" {
			errs = append(errs, fieldError("StepUp.ClientID", "is required"))
		}
		if c.ClientSecret == "" {
			errs = append(errs, fieldError("StepUp.ClientSecret", "is required"))
		}
		if c.ClockSkew == 0 {
			c.ClockSkew = time.Minute
		} else if c.ClockSkew < 0 || c.ClockSkew > 10*time.Minute {
			errs = append(errs, fieldError("StepUp.ClockSkew", "must be between 0 and 10m"))
		}
		c.ACRValues = append([]string(nil), c.ACRValues...)
		s.StepUp = &c
		if cfg.Sessions == nil {
			errs = append(errs, fieldError("StepUp", "needs Sessions (sspr must know who is signed in)"))
		}
	}
	if cfg.LogoURL != "" && !strings.HasPrefix(cfg.LogoURL, "/") {
		if _, err := parseAbsURL(cfg.LogoURL); err != nil {
			errs = append(errs, fieldError("LogoURL", "must be a path starting with / or an absolute URL"))
		}
	}
	if cfg.AccountURL != "" {
		if _, err := parseAbsURL(cfg.AccountURL); err != nil {
			errs = append(errs, fieldError("AccountURL", "%v", err))
		}
	}
	if cfg.HelpURL != "" {
		if _, err := parseAbsURL(cfg.HelpURL); err != nil {
			errs = append(errs, fieldError("HelpURL", "%v", err))
		}
	}

	if s.ProductName == "" {
		s.ProductName = DefaultProductName
	}
	switch {
	case cfg.JourneyTTL == 0:
		s.JourneyTTL = DefaultJourneyTTL
	case cfg.JourneyTTL < time.Minute || cfg.JourneyTTL > maxJourneyTTL:
		errs = append(errs, fieldError("JourneyTTL", "must be between 1m and %s", maxJourneyTTL))
	}
	switch {
	case cfg.AuditRetention == 0:
		s.AuditRetention = DefaultAuditRetention
	case cfg.AuditRetention < 0:
		errs = append(errs, fieldError("AuditRetention", "must not be negative"))
	}

	def := defaultLimits()
	for _, l := range []struct {
		name string
		v    *Limit
		def  Limit
	}{
		{"Limits.StartsPerIP", &s.Limits.StartsPerIP, def.StartsPerIP},
		{"Limits.StartsPerAccount", &s.Limits.StartsPerAccount, def.StartsPerAccount},
		{"Limits.FailuresPerAccount", &s.Limits.FailuresPerAccount, def.FailuresPerAccount},
		{"Limits.VerifiesPerIP", &s.Limits.VerifiesPerIP, def.VerifiesPerIP},
		{"Limits.MessagesPerDestination", &s.Limits.MessagesPerDestination, def.MessagesPerDestination},
	} {
		switch {
		case *l.v == Limit{}:
			*l.v = l.def
		case l.v.N <= 0 || l.v.Window < time.Second:
			errs = append(errs, fieldError(l.name, "needs N > 0 and a Window of at least 1s"))
		}
	}

	if s.Hasher == nil {
		h, err := password.NewHasher(password.HasherConfig{})
		if err != nil {
			errs = append(errs, fieldError("Hasher", "%v", err))
		}
		s.Hasher = h
	}
	if s.ClientIP == nil {
		s.ClientIP = remoteIP
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

func parseAbsURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("is not a valid URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, errors.New("must be an absolute http(s) URL")
	}
	if u.Host == "" {
		return nil, errors.New("must have a host")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("must not have user info, query or fragment")
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validFlowID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for _, c := range id {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
