// Package outbound holds what sspr's clients of other HTTP services (the
// Have I Been Pwned range API in plugin/password, the webhook and Twilio
// senders in plugin/notify) share, so that each makes the same promises:
//
//   - Where it may send: [ParseURL] tells whether a configured URL is
//     absolute, http or https, and secure (https, or plain http only to a
//     [LoopbackHost], where nothing crosses a network), and whether it has
//     user info, a query or a fragment. Each client turns that into its
//     own field errors, in its own order.
//   - Not elsewhere: [NewClient] never follows a redirect, which would hand
//     the request (its body, its credentials) to another address; the
//     redirect comes back as the answer, which the caller refuses.
//   - No secrets in errors: [StripURL] removes the URL from a client's
//     error, since its path or query may carry a token or part of a hash.
//   - Bounded reading: [ReadAtMost] reads at most so many bytes of an
//     answer and tells whether there was more; [DrainClose] reads a
//     bounded rest, so that the connection can be reused, and closes.
//
// Everything here is stateless and safe for concurrent use.
package outbound
