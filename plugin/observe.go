package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sspr-go/sspr/plugin/store"
)

// metrics are the plugin's Prometheus metrics, in a registry of its own
// (no global state): mount [Plugin.MetricsHandler] where your scraper
// looks.
type metrics struct {
	reg         *prometheus.Registry
	events      *prometheus.CounterVec
	outboxDelay prometheus.Histogram
	outboxFail  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sspr_events_total",
			Help: "Journey events by kind and outcome: journey.start, verify.<flow>, link.<flow>, method.begin, password.change, stepup.*, factor.* (the audit trail's events).",
		}, []string{"event", "outcome"}),
		outboxDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sspr_outbox_delay_seconds",
			Help:    "Time from queueing a message to its delivery.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
		}),
		outboxFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sspr_outbox_failures_total",
			Help: "Failed delivery attempts; dead=true when the message was given up.",
		}, []string{"dead"}),
	}
	m.reg.MustRegister(m.events, m.outboxDelay, m.outboxFail)
	return m
}

// MetricsHandler serves the plugin's Prometheus metrics. Mount it behind
// your own access control; it reveals volumes, never users.
func (p *Plugin) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(p.metrics.reg, promhttp.HandlerOpts{})
}

// atomic runs fn in one store transaction, like [store.Store.Atomic], and
// reports the audit events fn appended (through appendAudit) to the log
// and the metrics once the transaction has committed: never an event that
// was rolled back, and no logging while the store's writer waits.
func (p *Plugin) atomic(ctx context.Context, fn func(tx store.Tx) error) error {
	var events []store.AuditEvent
	err := p.s.Store.Atomic(ctx, func(tx store.Tx) error {
		events = events[:0] // a store may run fn again
		return fn(auditedTx{Tx: tx, events: &events})
	})
	if err == nil {
		for _, e := range events {
			p.record(ctx, e)
		}
	}
	return err
}

// auditedTx is the transaction atomic hands out: appendAudit keeps the
// events it writes for atomic to report after the commit.
type auditedTx struct {
	store.Tx
	events *[]store.AuditEvent
}

// recordUnstored reports events of a change that happened but whose audit
// write failed to the log and the metrics, marked as not stored, so that
// they are not lost altogether.
func (p *Plugin) recordUnstored(ctx context.Context, r *http.Request, events ...store.AuditEvent) {
	for _, e := range events {
		e.Time, e.IP = p.s.Now(), p.s.ClientIP(r)
		e.Detail = strings.TrimSpace(e.Detail + " (not stored: the audit write failed)")
		p.record(ctx, e)
	}
}

// record counts an audit event and emits it through slog: Warn for failed
// and limited outcomes (security events), Info otherwise. It never logs
// secrets: events carry none.
func (p *Plugin) record(ctx context.Context, e store.AuditEvent) {
	p.metrics.events.WithLabelValues(e.Event, e.Outcome).Inc()
	level := slog.LevelInfo
	if e.Outcome == "failed" || e.Outcome == "limited" {
		level = slog.LevelWarn
	}
	p.log.Log(ctx, level, "sspr: audit", slog.Group("audit",
		"event", e.Event, "outcome", e.Outcome, "user", e.UserID, "journey", e.JourneyID,
		"ip", e.IP, "detail", e.Detail))
}

// auditEventJSON is one event of the audit API.
type auditEventJSON struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	Event     string    `json:"event"`
	Outcome   string    `json:"outcome"`
	UserID    string    `json:"user_id,omitempty"`
	JourneyID string    `json:"journey_id,omitempty"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// maxAuditLimit bounds one page of the audit API.
const maxAuditLimit = 1000

// AuditHandler serves the audit trail as JSON for administrators: GET with
// the optional query parameters user, journey, event, since and until
// (RFC 3339) and limit (1–1000, default 100), newest first:
//
//	{"events": [{"id": 7, "time": "…", "event": "password.change", "outcome": "ok", "user_id": "…", …}]}
//
// Mount it behind your own authorization: it lists who reset what, when
// and from where. Bad parameters answer 400 with {"error": "…"}.
func (p *Plugin) AuditHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "only GET is allowed"})
			return
		}
		q := r.URL.Query()
		f := store.AuditFilter{UserID: q.Get("user"), JourneyID: q.Get("journey"), Event: q.Get("event"), Limit: 100}
		var errs []error
		for _, t := range []struct {
			name string
			dst  *time.Time
		}{{"since", &f.Since}, {"until", &f.Until}} {
			if v := q.Get(t.name); v != "" {
				parsed, err := time.Parse(time.RFC3339, v)
				if err != nil {
					errs = append(errs, errors.New("'"+t.name+"' must be an RFC 3339 time"))
					continue
				}
				*t.dst = parsed
			}
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxAuditLimit {
				errs = append(errs, errors.New("'limit' must be between 1 and 1000"))
			} else {
				f.Limit = n
			}
		}
		if err := errors.Join(errs...); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		evs, err := p.s.Store.Audit(r.Context(), f)
		if err != nil {
			p.log.ErrorContext(r.Context(), "sspr: audit API", slog.Any("err", err))
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "the audit trail could not be read"})
			return
		}
		out := make([]auditEventJSON, 0, len(evs))
		for _, e := range evs {
			out = append(out, auditEventJSON{ID: e.ID, Time: e.Time.UTC(), Event: e.Event, Outcome: e.Outcome, UserID: e.UserID,
				JourneyID: e.JourneyID, IP: e.IP, UserAgent: e.UserAgent, Detail: e.Detail})
		}
		writeJSON(w, http.StatusOK, map[string]any{"events": out})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
