// Package templates holds sspr's default pages, stylesheet and message
// bodies, embedded in the binary. A host overrides any file by handing
// plugin.New an fs.FS that contains a file of the same path; everything is
// parsed once in plugin.New, so a missing or broken template fails there,
// never at request time.
//
// Layout of the file system:
//
//	pages/layout.html    the frame every page is rendered in ("layout")
//	pages/<name>.html    one page each; defines "title" and "content"
//	email/<name>.txt     plain-text body of a message; defines "subject" and "text"
//	email/<name>.html    HTML body of a message; defines "html"
//	sms/<name>.txt       text of a message by SMS; defines "text" (keep it to
//	                     one segment: 160 GSM-7 or 70 UCS-2 characters)
//	static/style.css     the stylesheet, served under <base>/static/style.css
//	static/password.js   the show-password toggle of the password pages
//	static/brand.css     loaded after style.css, empty by default: a host's
//	                     colours (CSS variables) go here
//	messages/<lang>.json the message catalog of a language: key → text
//	                     with {name} placeholders; en.json is the reference
//	                     and every other catalog must have exactly its keys
//
// Pages take every user-facing text from the catalogs ({{.T.Get "key"}}),
// so adding a language is adding one messages file. Pages use
// html/template and never contain inline script or style, so the
// plugin's Content-Security-Policy can forbid both; every page works without
// JavaScript.
package templates

import (
	"embed"
	"io/fs"
)

//go:embed pages/*.html email/*.txt email/*.html sms/*.txt static/* messages/*.json
var files embed.FS

// Default returns the embedded default templates.
func Default() fs.FS { return files }

// Pages lists the page templates the plugin requires, without extension.
func Pages() []string {
	return []string{"start", "check", "code", "webauthn", "choose", "confirm", "elsewhere", "password", "done", "changed", "security", "enrol-totp", "enrol-webauthn", "enrol-codes", "enrol-sms", "questions", "enrol-questions", "ticket", "stepup", "error"}
}

// Emails lists the email templates the plugin requires, without extension.
func Emails() []string {
	return []string{"reset", "stepup", "changed", "factor", "ticket", "requested", "admin-reset", "attempts"}
}

// SMS lists the SMS templates the plugin requires, without extension:
// the codes of flows/sms and the notices the plugin sends to phone
// numbers.
func SMS() []string {
	return []string{"code", "stepup", "enrol", "changed", "factor", "requested", "attempts"}
}
