package plugin

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/sspr-go/sspr/flows"
	"github.com/sspr-go/sspr/plugin/notify"
	"github.com/sspr-go/sspr/plugin/password"
	"github.com/sspr-go/sspr/plugin/store"
	"github.com/sspr-go/sspr/templates"
)

// cookieName is the name of the cookie that binds a journey to a browser.
// It holds only the journey ID, signed and encrypted.
const cookieName = "sspr_journey"

// sweepInterval is how often Run removes expired data.
const sweepInterval = 5 * time.Minute

// senderParallel is how many messages the outbox worker sends at once
// ([Config.Sender] must be safe for concurrent use): a reset email over
// SMTP takes a connection and tens of milliseconds, one at a time would
// cap delivery at a few dozen messages a second.
const senderParallel = 8

// senderGather is how long the outbox worker lets messages gather after a
// kick before it claims them: under load one claim and one commit then
// serve a dozen messages instead of one or two, for 10 ms more delay.
const senderGather = 10 * time.Millisecond

// senderBatch is how many messages one claim of the outbox worker takes:
// at ≈ 3,000 reset starts a second (concurrency 32 in examples/bench) a
// batch of 16 fell behind by ≈ 9,600 messages in 10 s; 64 keeps up.
const senderBatch = 64

// sweepGrace keeps expired journeys and challenges a while, so that a late
// click on a link says "expired" rather than "not valid".
const sweepGrace = 24 * time.Hour

// Plugin is the mountable password-reset handler. Create it with [New],
// mount it under the path of [Config.BaseURL], and run [Plugin.Run] in a
// goroutine to deliver queued messages and sweep expired data.
type Plugin struct {
	s       *settings
	keys    *keyring
	pages   *renderer
	msgs    *catalogs
	metrics *metrics
	cookies *sessions.CookieStore
	policy  *password.Policy
	limits  limiter
	worker  *notify.Worker
	log     *slog.Logger

	byID      map[string]flows.Flow
	channels  []flows.Flow
	bound     []flows.Flow
	redeemers []flows.LinkRedeemer
	// enrollers are the flows a user can manage on the security-info
	// page, in the configured order, by ID in enrollerOf.
	enrollers   []flows.Flow
	enrollerOf  map[string]flows.Enroller
	revoker     SessionRevoker
	verifier    PasswordVerifier
	contacts    ContactLister
	admins      AdminChecker
	adminLister AdminLister
	raiser      SessionRaiser
	scripts     map[string][]byte
	stepUp      *stepUpClient
	basePath    string
	baseOrigin  string
	csp         string

	// verifying lets one expensive verification (a flows.Preparer) at a
	// time run per journey.
	verifying keyedLock

	// wallNow is the wall clock that times the directory in
	// commitPassword; nil means time.Now. Only tests set it.
	wallNow func() time.Time
}

// New validates cfg and returns a ready plugin. It reports every bad field
// of cfg at once, each naming the field, and fails when a template is
// missing or broken.
func New(cfg Config) (*Plugin, error) {
	s, err := validate(cfg)
	if err != nil {
		return nil, err
	}
	var errs []error
	p := &Plugin{s: s, log: s.Logger, byID: map[string]flows.Flow{}, enrollerOf: map[string]flows.Enroller{}, scripts: map[string][]byte{}, metrics: newMetrics()}
	if p.keys, err = newKeyring(s.Keys); err != nil {
		errs = append(errs, err)
	}
	files := overlay{override: s.Templates, base: templates.Default()}
	if p.pages, err = newRenderer(files); err != nil {
		errs = append(errs, err)
	}
	if p.msgs, err = loadCatalogs(files); err != nil {
		errs = append(errs, fmt.Errorf("sspr: config: field 'Templates': %w", err))
	}
	pc := s.Password
	if s.ProductName != DefaultProductName {
		// The product's own name is a context word (ASVS V6.2.11).
		pc.ContextWords = append(slices.Clone(pc.ContextWords), s.ProductName)
	}
	if p.policy, err = password.NewPolicy(pc); err != nil {
		errs = append(errs, fmt.Errorf("sspr: config: field 'Password': %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	for _, f := range s.Flows {
		p.byID[f.ID()] = f
		switch f.Kind() {
		case flows.KindChannel:
			p.channels = append(p.channels, f)
		case flows.KindBound:
			p.bound = append(p.bound, f)
		}
		if lr, ok := f.(flows.LinkRedeemer); ok {
			p.redeemers = append(p.redeemers, lr)
		}
		if en, ok := f.(flows.Enroller); ok {
			p.enrollers = append(p.enrollers, f)
			p.enrollerOf[f.ID()] = en
		}
		if sc, ok := f.(scripter); ok {
			p.scripts[f.ID()] = sc.Script()
		}
	}
	p.revoker, _ = s.Directory.(SessionRevoker)
	if p.revoker == nil {
		// DESIGN: after a reset every session and refresh token of the user
		// is revoked. Without the capability sspr cannot do it; say so once
		// (each reset also records "sessions.revoke: not supported").
		p.log.Warn("sspr: the Directory does not implement SessionRevoker: sessions survive a password reset")
	}
	p.contacts, _ = s.Directory.(ContactLister)
	p.verifier, _ = s.Directory.(PasswordVerifier)
	p.admins, _ = s.Directory.(AdminChecker)
	if p.admins != nil {
		p.adminLister, _ = s.Directory.(AdminLister)
	}
	p.raiser, _ = s.Sessions.(SessionRaiser)
	if s.StepUp != nil {
		p.stepUp = &stepUpClient{cfg: *s.StepUp}
	}

	p.basePath = s.base.Path
	p.baseOrigin = s.base.Scheme + "://" + s.base.Host
	p.csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

	p.cookies = sessions.NewCookieStore(p.keys.cookieKeys()...)
	p.cookies.Options = &sessions.Options{
		Path:     cookiePath(p.basePath),
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
	}
	p.cookies.MaxAge(int(s.JourneyTTL / time.Second))
	for _, c := range p.cookies.Codecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			sc.SetSerializer(journeyIDSerializer{})
		}
	}

	p.limits = limiter{keys: p.keys, disabled: s.InsecureDisableRateLimits}
	p.worker, err = notify.NewWorker(notify.WorkerConfig{
		Outbox: s.Store,
		Sender: notify.SenderFunc(p.send),
		Open:   p.openMessage,
		Logger: s.Logger,
		Now:    s.Now,
		// A batch's outcomes and their audit events commit together.
		Atomic:    p.atomic,
		Record:    p.auditDelivery,
		Parallel:  senderParallel,
		Gather:    senderGather,
		BatchSize: senderBatch,
		OnDelivered: func(m notify.Message, delay time.Duration) {
			p.metrics.outboxDelay.Observe(delay.Seconds())
		},
		OnFailed: func(m notify.Message, dead bool) {
			p.metrics.outboxFail.WithLabelValues(strconv.FormatBool(dead)).Inc()
		},
	})
	if err != nil {
		return nil, fmt.Errorf("sspr: %w", err)
	}
	if s.InsecureDisableRateLimits {
		p.log.Warn("sspr: rate limits are OFF (InsecureDisableRateLimits); never run like this in production")
	}
	return p, nil
}

func cookiePath(base string) string {
	if base == "" {
		return "/"
	}
	return base + "/"
}

// Run delivers queued messages and sweeps expired data until ctx ends. Run
// it in its own goroutine; several instances sharing one store may each
// run it.
func (p *Plugin) Run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- p.worker.Run(ctx) }()
	p.sweep(ctx)
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return <-done
		case <-t.C:
			p.sweep(ctx)
		}
	}
}

// Deliver attempts delivery of the queued messages that are due now, once,
// and returns how many it handled. [Plugin.Run] does this continuously;
// Deliver serves tests and one-shot tools.
func (p *Plugin) Deliver(ctx context.Context) (int, error) {
	return p.worker.Deliver(ctx)
}

func (p *Plugin) sweep(ctx context.Context) {
	now := p.s.Now()
	n, err := p.s.Store.Sweep(ctx, now.Add(-sweepGrace), now.Add(-p.s.AuditRetention))
	if err != nil {
		if ctx.Err() == nil {
			p.log.ErrorContext(ctx, "sspr: sweep failed", slog.Any("err", err))
		}
		return
	}
	if n > 0 {
		p.log.DebugContext(ctx, "sspr: swept expired data", slog.Int64("rows", n))
	}
}

// RecordPassword adds password to the user's password history, so that a
// reset refuses to reuse it. Hosts call it when a password is set outside
// sspr (sign-up, an administrator); sspr records the passwords it sets.
func (p *Plugin) RecordPassword(ctx context.Context, userID, password string) error {
	if userID == "" {
		return errors.New("sspr: record password: empty user ID")
	}
	h, key, err := p.historyKey(ctx, userID, password)
	if err != nil {
		return err
	}
	return p.atomic(ctx, func(tx store.Tx) error {
		return p.saveHistory(ctx, tx, h, key)
	})
}

// historyKey loads the user's history (or starts one) and derives the key
// of password under its salt: the one argon2id computation of a history
// check.
func (p *Plugin) historyKey(ctx context.Context, userID, password string) (store.History, []byte, error) {
	h, err := p.s.Store.PasswordHistory(ctx, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		h = store.History{UserID: userID}
	case err != nil:
		return h, nil, fmt.Errorf("sspr: password history: %w", err)
	}
	if h.Params != p.s.Hasher.HistoryParams() || len(h.Salt) == 0 {
		// New history, or one kept with other parameters: start over
		// (older keys cannot be compared).
		h.Salt = make([]byte, 16)
		_, _ = rand.Read(h.Salt)
		h.Params = p.s.Hasher.HistoryParams()
		h.Keys = nil
	}
	key, err := p.s.Hasher.DeriveKey(ctx, password, h.Salt, h.Params)
	if err != nil {
		return h, nil, fmt.Errorf("sspr: password history: %w", err)
	}
	return h, key, nil
}

func (p *Plugin) saveHistory(ctx context.Context, tx store.Tx, h store.History, key []byte) error {
	keys := append([][]byte{key}, h.Keys...)
	if n := p.policy.HistorySize(); len(keys) > n {
		keys = keys[:n]
	}
	h.Keys = keys
	if err := tx.SaveHistory(ctx, h); err != nil {
		return fmt.Errorf("sspr: save password history: %w", err)
	}
	return nil
}

// outboxAD binds sealed outbox payloads to their purpose.
const outboxAD = "sspr outbox"

// scripter is implemented by flows whose page needs a script (WebAuthn);
// the plugin serves it at <base>/static/<flow ID>.js.
type scripter interface {
	Script() []byte
}

// env is the [flows.Env] the plugin lends to flows.
type env struct {
	p *Plugin
	// sent, when set, collects the recipients of the messages queued, so
	// that a journey start can tell the user's other addresses.
	sent *[]string
	// journey and user say whom the messages are about, for the audit
	// trail's "message.sent".
	journey, user string
	// enrol marks an enrolment: its messages count against the user too,
	// so that nobody has a code texted to one number after another.
	enrol bool
}

// Queue applies the per-destination limit (and, in an enrolment, the
// same limit per user) and queues m. Over the limit
// the message is queued without a recipient (the outbox drops it), so the
// journey answers and works exactly as usual; the drop is audited. A
// decoy's message (no recipient) counts against a throwaway key, so that
// known and unknown identifiers do the same store work.
func (e env) Queue(ctx context.Context, tx store.Tx, m flows.Message) error {
	p := e.p
	key := p.limits.key("dest:"+m.Channel, strings.ToLower(m.To))
	if m.To == "" {
		key = p.limits.key("dest:"+m.Channel, "decoy:"+randomID(9))
	}
	lim, err := p.limits.hit(ctx, tx, p.s.Limits.MessagesPerDestination, key, p.s.Now())
	if err != nil {
		return err
	}
	if e.enrol && !lim.exceeded {
		if lim, err = p.limits.hit(ctx, tx, p.s.Limits.MessagesPerDestination, p.limits.key("enrol-user", e.user), p.s.Now()); err != nil {
			return err
		}
	}
	if lim.exceeded && m.To != "" {
		if err := p.appendAudit(ctx, tx, store.AuditEvent{Event: "message.limited", Outcome: "limited", JourneyID: e.journey, UserID: e.user,
			Detail: "per-destination limit: " + m.Channel + " " + m.Template}); err != nil {
			return err
		}
		m.To = ""
	}
	if e.sent != nil && m.To != "" {
		*e.sent = append(*e.sent, m.To)
	}
	d, err := json.Marshal(m.Data)
	if err != nil {
		return fmt.Errorf("sspr: encode message data: %w", err)
	}
	if !p.pages.hasMessage(m.Channel, m.Template) {
		return fmt.Errorf("sspr: no %s template %q", m.Channel, m.Template)
	}
	_, err = p.enqueue(ctx, tx, p.s.Now(), queued{Template: m.Template, Channel: m.Channel, To: m.To, Lang: m.Locale, Data: d,
		Journey: e.journey, User: e.user})
	return err
}

func (e env) MAC(purpose string, parts ...[]byte) []byte { return e.p.keys.mac(purpose, parts...) }

func (e env) MACs(purpose string, parts ...[]byte) [][]byte { return e.p.keys.macs(purpose, parts...) }

func (e env) URL(path string, query url.Values) string { return e.p.url(path, query) }

func (e env) Now() time.Time { return e.p.s.Now() }

// url returns the absolute URL of path under BaseURL, from configuration.
func (p *Plugin) url(path string, query url.Values) string {
	u := *p.s.base
	u.Path = p.basePath + path
	u.RawQuery = query.Encode()
	return u.String()
}

// queued is what the outbox keeps of a message: what to render, not the
// rendering. Rendering then happens at delivery, off the request path, and
// the stored payload stays small (a reset start writes one row of a few
// hundred bytes instead of the whole text and HTML).
type queued struct {
	Template string          `json:"t"`
	Channel  string          `json:"c"`
	To       string          `json:"to,omitempty"`
	Lang     string          `json:"l"`
	Data     json.RawMessage `json:"d"`
	// Journey and User, when set, are audited with the delivery.
	Journey string `json:"j,omitempty"`
	User    string `json:"u,omitempty"`
}

// queue writes a message, sealed (it may carry a code or a link), to the
// outbox in tx, due now. The template must exist; its data must encode to
// JSON.
func (p *Plugin) queue(ctx context.Context, tx store.Tx, template, channel, to, lang string, data any) error {
	_, err := p.queueAt(ctx, tx, p.s.Now(), template, channel, to, lang, data)
	return err
}

// queueAt is queue for a message due at at; it returns the message's ID.
func (p *Plugin) queueAt(ctx context.Context, tx store.Tx, at time.Time, template, channel, to, lang string, data any) (int64, error) {
	if !p.pages.hasMessage(channel, template) {
		return 0, fmt.Errorf("sspr: no %s template %q", channel, template)
	}
	d, err := json.Marshal(data)
	if err != nil {
		return 0, fmt.Errorf("sspr: encode message data: %w", err)
	}
	return p.enqueue(ctx, tx, at, queued{Template: template, Channel: channel, To: to, Lang: lang, Data: d})
}

// enqueue seals q and writes it to the outbox.
func (p *Plugin) enqueue(ctx context.Context, tx store.Tx, at time.Time, q queued) (int64, error) {
	raw, err := json.Marshal(q)
	if err != nil {
		return 0, fmt.Errorf("sspr: encode message: %w", err)
	}
	id, err := tx.Enqueue(ctx, store.Message{
		Channel:       q.Channel,
		Payload:       p.keys.seal(raw, outboxAD),
		CreatedAt:     p.s.Now(),
		NextAttemptAt: at,
	})
	if err != nil {
		return 0, fmt.Errorf("sspr: enqueue: %w", err)
	}
	return id, nil
}

// openMessage unseals a queued message and renders it in its language.
func (p *Plugin) openMessage(payload []byte) (notify.Message, error) {
	raw, err := p.keys.open(payload, outboxAD)
	if err != nil {
		return notify.Message{}, err
	}
	var q queued
	err = json.Unmarshal(raw, &q)
	if job := q.Channel == revokeChannel || q.Channel == attemptsChannel; err != nil || (q.Template == "" && !job) {
		return notify.Message{}, fmt.Errorf("sspr: decode message: %w", errors.Join(err, errors.New("not a queued message")))
	}
	switch q.Channel {
	case revokeChannel:
		return notify.Message{Channel: q.Channel, To: q.To}, nil
	case attemptsChannel:
		// The job's record travels in Text to send (tellAttempts); a job
		// never reaches the host's Sender.
		return notify.Message{Channel: q.Channel, To: q.To, Text: string(raw)}, nil
	}
	var data any
	if err := json.Unmarshal(q.Data, &data); err != nil {
		return notify.Message{}, fmt.Errorf("sspr: decode message data: %w", err)
	}
	m, err := p.pages.message(q.Channel, q.Template, q.To, emailData{Product: p.s.ProductName, Data: data, T: p.msgs.translator(q.Lang)})
	m.Template, m.JourneyID, m.UserID = q.Template, q.Journey, q.User
	return m, err
}

// auditDelivery records, in the transaction that marks it sent or given
// up, that a journey's or an enrolment's message (a code, a link) was
// delivered or given up. Notices are not recorded: the event that caused
// them is.
func (p *Plugin) auditDelivery(ctx context.Context, tx store.Tx, m notify.Message, delivered bool) error {
	if m.JourneyID == "" && m.UserID == "" {
		return nil
	}
	outcome, detail := "ok", ""
	if !delivered {
		outcome, detail = "failed", "given up"
	}
	return p.appendAudit(ctx, tx, store.AuditEvent{Event: "message.sent", JourneyID: m.JourneyID, UserID: m.UserID,
		Outcome: outcome, Detail: strings.TrimSpace(m.Channel + " " + m.Template + " " + detail)})
}

// subject describes a user to the flows.
func (p *Plugin) subject(ctx context.Context, u User) (flows.Subject, error) {
	s := flows.Subject{UserID: u.ID, Locale: u.Locale}
	if p.contacts != nil {
		cs, err := p.contacts.Contacts(ctx, u.ID)
		if err != nil {
			return s, fmt.Errorf("sspr: contacts: %w", err)
		}
		for _, c := range cs {
			switch c.Channel {
			case "email":
				s.Emails = appendUnique(s.Emails, c.Address)
			case "sms":
				s.Phones = appendUnique(s.Phones, c.Address)
			}
		}
	}
	if u.Email != "" && !containsFold(s.Emails, u.Email) {
		s.Emails = append([]string{u.Email}, s.Emails...)
	}
	return s, nil
}

func appendUnique(list []string, v string) []string {
	if v == "" || containsFold(list, v) {
		return list
	}
	return append(list, v)
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// journeyIDSerializer encodes the journey cookie's only value, the
// journey ID, as its bytes, instead of gob (securecookie's default), which
// cost 5 % of a reset start's CPU. It refuses anything else.
type journeyIDSerializer struct{}

// Serialize implements securecookie.Serializer.
func (journeyIDSerializer) Serialize(src any) ([]byte, error) {
	m, ok := src.(map[any]any)
	if !ok {
		return nil, errors.New("sspr: cookie: not a session's values")
	}
	id, ok := m["id"].(string)
	if !ok || len(m) != 1 {
		return nil, errors.New("sspr: cookie: only a journey ID is stored")
	}
	return []byte(id), nil
}

// Deserialize implements securecookie.Serializer.
func (journeyIDSerializer) Deserialize(src []byte, dst any) error {
	m, ok := dst.(*map[any]any)
	if !ok {
		return errors.New("sspr: cookie: not a session's values")
	}
	*m = map[any]any{"id": string(src)}
	return nil
}
