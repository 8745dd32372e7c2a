package webauthn

import _ "embed"

//go:embed static/webauthn.js
var script string

// Script returns the page script that runs a ceremony (a fresh copy on
// each call). The plugin serves it at <base>/static/webauthn.js. It runs
// on a page that has:
//
//   - <script type="application/json" id="webauthn-options"> holding the
//     options JSON ([Flow.AssertionOptions], [Flow.BeginLogin] or
//     [Flow.BeginRegistration]), bare or as {"publicKey": …};
//   - <form id="webauthn-form" data-ceremony="get"> (or "create") with a
//     hidden field named "assertion" (or "attestation").
//
// When the form is submitted, it calls navigator.credentials.get (or
// create) with the options parsed by
// PublicKeyCredential.parseRequestOptionsFromJSON (or
// parseCreationOptionsFromJSON, with a base64url fallback for browsers
// without them), puts JSON.stringify(credential.toJSON()) into the hidden
// field and submits the form. Without WebAuthn it disables the form and
// shows the element #webauthn-unsupported; when the ceremony fails (the
// user cancels, the timeout passes) it shows #webauthn-failed if the page
// has one and lets the user try again. It contains no user-facing text
// (pages carry it, translated) and needs no inline script, so it runs
// under "script-src 'self'".
func Script() []byte { return []byte(script) }

// Script returns the page script (the same as the package's [Script]); the
// plugin serves it at <base>/static/webauthn.js.
func (f *Flow) Script() []byte { return Script() }
