package plugin

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strings"
	texttemplate "text/template"

	"github.com/sspr-go/sspr/plugin/notify"
	"github.com/sspr-go/sspr/templates"
)

// renderer holds every template, parsed once in New.
type renderer struct {
	pages    map[string]*htmltemplate.Template
	messages map[string]messageTemplate // by "<channel>/<name>"
	css      []byte
	brand    []byte
	pwjs     []byte
}

type messageTemplate struct {
	text *texttemplate.Template // defines "text" (and "subject" for email)
	html *htmltemplate.Template // defines "html"; nil when absent
}

// overlay reads a file from override when it has it, else from base.
type overlay struct {
	override fs.FS
	base     fs.FS
}

func (o overlay) read(name string) ([]byte, error) {
	if o.override != nil {
		b, err := fs.ReadFile(o.override, name)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return fs.ReadFile(o.base, name)
}

func newRenderer(o overlay) (*renderer, error) {
	r := &renderer{pages: map[string]*htmltemplate.Template{}, messages: map[string]messageTemplate{}}
	var errs []error

	layout, err := o.read("pages/layout.html")
	if err != nil {
		return nil, fmt.Errorf("sspr: config: field 'Templates': pages/layout.html: %w", err)
	}
	for _, name := range templates.Pages() {
		file := "pages/" + name + ".html"
		src, err := o.read(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("sspr: config: field 'Templates': %s: %w", file, err))
			continue
		}
		t, err := htmltemplate.New("layout").Option("missingkey=error").Parse(string(layout))
		if err == nil {
			t, err = t.New(file).Parse(string(src))
		}
		if err == nil {
			err = requireDefined(t.Lookup, file, "layout", "title", "content")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sspr: config: field 'Templates': %w", err))
			continue
		}
		r.pages[name] = t
	}
	for _, name := range templates.Emails() {
		if err := r.parseMessage(o, "email", name, "subject", "text"); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range templates.SMS() {
		if err := r.parseMessage(o, "sms", name, "text"); err != nil {
			errs = append(errs, err)
		}
	}
	if r.css, err = o.read("static/style.css"); err != nil {
		errs = append(errs, fmt.Errorf("sspr: config: field 'Templates': static/style.css: %w", err))
	}
	if r.pwjs, err = o.read("static/password.js"); err != nil {
		errs = append(errs, fmt.Errorf("sspr: config: field 'Templates': static/password.js: %w", err))
	}
	if r.brand, err = o.read("static/brand.css"); err != nil {
		errs = append(errs, fmt.Errorf("sspr: config: field 'Templates': static/brand.css: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// parseMessage parses <channel>/<name>.txt, which must define the named
// templates, and <channel>/<name>.html if it exists.
func (r *renderer) parseMessage(o overlay, channel, name string, defines ...string) error {
	var mt messageTemplate
	file := channel + "/" + name + ".txt"
	src, err := o.read(file)
	if err == nil {
		mt.text, err = texttemplate.New(file).Option("missingkey=error").Parse(string(src))
	}
	if err == nil {
		err = requireDefined(func(n string) *texttemplate.Template { return mt.text.Lookup(n) }, file, defines...)
	}
	if err != nil {
		return fmt.Errorf("sspr: config: field 'Templates': %s: %w", file, err)
	}
	file = channel + "/" + name + ".html"
	if src, err := o.read(file); err == nil {
		if mt.html, err = htmltemplate.New(file).Option("missingkey=error").Parse(string(src)); err == nil {
			err = requireDefined(mt.html.Lookup, file, "html")
		}
		if err != nil {
			return fmt.Errorf("sspr: config: field 'Templates': %s: %w", file, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sspr: config: field 'Templates': %s: %w", file, err)
	}
	r.messages[channel+"/"+name] = mt
	return nil
}

func requireDefined[T any](lookup func(string) *T, file string, names ...string) error {
	for _, n := range names {
		if lookup(n) == nil {
			return fmt.Errorf("%s: template %q is not defined", file, n)
		}
	}
	return nil
}

// view is the data every page template receives.
type view struct {
	// Lang is the page language.
	Lang string
	// Product is the product name.
	Product string
	// Logo is the URL of the product's logo, if any.
	Logo string
	// Base is the path the plugin is mounted at, without a trailing slash.
	Base string
	// CSRF is the token to put in every form.
	CSRF string
	// T translates message keys into the page's language.
	T T
	// Page holds the page's own data.
	Page any
}

// page renders the named page into a buffer, so that a template error never
// sends half a page.
func (r *renderer) page(name string, v view) ([]byte, error) {
	t, ok := r.pages[name]
	if !ok {
		return nil, fmt.Errorf("sspr: no page template %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return nil, fmt.Errorf("sspr: render %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// emailData is what message templates receive.
type emailData struct {
	Product string
	Data    any
	T       T
}

// hasMessage reports whether the message template name of channel exists.
func (r *renderer) hasMessage(channel, name string) bool {
	_, ok := r.messages[channel+"/"+name]
	return ok
}

// message renders a message of channel. Only email has a subject (and may
// have HTML).
func (r *renderer) message(channel, name, to string, d emailData) (notify.Message, error) {
	mt, ok := r.messages[channel+"/"+name]
	if !ok {
		return notify.Message{}, fmt.Errorf("sspr: no %s template %q", channel, name)
	}
	var subject, text, html bytes.Buffer
	if mt.text.Lookup("subject") != nil {
		if err := mt.text.ExecuteTemplate(&subject, "subject", d); err != nil {
			return notify.Message{}, fmt.Errorf("sspr: render %s/%s subject: %w", channel, name, err)
		}
	}
	if err := mt.text.ExecuteTemplate(&text, "text", d); err != nil {
		return notify.Message{}, fmt.Errorf("sspr: render %s/%s text: %w", channel, name, err)
	}
	m := notify.Message{
		Channel: channel,
		To:      to,
		Subject: strings.TrimSpace(subject.String()),
		Text:    strings.TrimLeft(text.String(), "\n"),
	}
	if channel != "email" {
		m.Text = strings.TrimSpace(m.Text)
	}
	if mt.html != nil {
		if err := mt.html.ExecuteTemplate(&html, "html", d); err != nil {
			return notify.Message{}, fmt.Errorf("sspr: render %s/%s html: %w", channel, name, err)
		}
		m.HTML = html.String()
	}
	return m, nil
}
