// Package email is the email verification flow: one message carries a link
// and a short code, and either proves that the person controls the
// address.
//
// Security properties (each is tested):
//   - the link token has 256 bits from crypto/rand and only its SHA-256 is
//     stored; the code (8 digits by default) is stored as an HMAC keyed by
//     the plugin, bound to the journey;
//   - link and code live 10 minutes by default and are single use: the
//     store consumes them with one conditional update, so of two concurrent
//     redemptions exactly one succeeds;
//   - 5 wrong codes kill the code and its link; asking for a new email
//     replaces the secrets but never resets that counter;
//   - a GET of the link never consumes it: the plugin shows a page whose
//     POST does ([Flow.PeekLink] and [Flow.RedeemLink]), so mail scanners
//     that prefetch links cannot burn them;
//   - for an identifier that matched nobody the flow does the same work and
//     queues a message without recipient, which the outbox drops.
//
// Use it by handing it to plugin.New:
//
//	f, err := email.New(email.Config{})
//	p, err := plugin.New(plugin.Config{Flows: []flows.Flow{f}, ...})
package email
