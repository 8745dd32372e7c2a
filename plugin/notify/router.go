package notify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Router is a [Sender] that hands each message to the sender registered for
// its [Message.Channel], for example "email" to an [SMTP] sender and "sms"
// to a [Webhook] or [Twilio] sender. A message for a channel without a
// sender fails permanently ([ErrPermanent]), so the [Worker] gives it up at
// once. A Router never changes after [NewRouter]; it is safe for concurrent
// use when its senders are.
type Router struct {
	routes map[string]Sender
}

var _ Sender = (*Router)(nil)

// NewRouter returns a router over routes, which maps a channel name to its
// sender. It copies routes, so later changes to the map do not reach the
// router. Every channel name must be non-empty and every sender non-nil;
// at least one route is required.
func NewRouter(routes map[string]Sender) (*Router, error) {
	var errs []error
	if len(routes) == 0 {
		errs = append(errs, errors.New("notify: router: at least one channel is required"))
	}
	for _, ch := range slices.Sorted(maps.Keys(routes)) {
		switch {
		case ch == "":
			errs = append(errs, errors.New("notify: router: channel name is empty"))
		case routes[ch] == nil:
			errs = append(errs, fmt.Errorf("notify: router: channel %q: sender is nil", ch))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Router{routes: maps.Clone(routes)}, nil
}

// Send delivers m with the sender registered for m.Channel and returns that
// sender's error unchanged. For an unknown channel it returns an error that
// names the channel and matches [ErrPermanent].
func (r *Router) Send(ctx context.Context, m Message) error {
	s, ok := r.routes[m.Channel]
	if !ok {
		return Permanent(fmt.Errorf("notify: router: no sender for channel %q", m.Channel))
	}
	return s.Send(ctx, m)
}
