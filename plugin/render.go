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
	pages  map[string]*htmltemplate.Template
	emails map[string]emailTemplate
	css    []byte
	brand  []byte
	pwjs   []byte
}

type emailTemplate struct {
	text *texttemplate.Template // defines "subject" and "text"
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
	r := &renderer{pages: map[string]*htmltemplate.Template{}, emails: map[string]emailTemplate{}}
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
		var et emailTemplate
		file := "email/" + name + ".txt"
		src, err := o.read(file)
		if err == nil {
			et.text, err = texttemplate.New(file).Option("missingkey=error").Parse(string(src))
		}
		if err == nil {
			err = requireDefined(func(n string) *texttemplate.Template { return et.text.Lookup(n) }, file, "subject", "text")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sspr: config: field 'Templates': %s: %w", file, err))
			continue
		}
		file = "email/" + name + ".html"
		if src, err := o.read(file); err == nil {
			if et.html, err = htmltemplate.New(file).Option("missingkey=error").Parse(string(src)); err == nil {
				err = requireDefined(et.html.Lookup, file, "html")
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("sspr: config: field 'Templates': %s: %w", file, err))
				continue
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("sspr: config: field 'Templates': %s: %w", file, err))
			continue
		}
		r.emails[name] = et
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

// hasEmail reports whether message template name exists.
func (r *renderer) hasEmail(name string) bool {
	_, ok := r.emails[name]
	return ok
}

// email renders a message.
func (r *renderer) email(name string, channel, to string, d emailData) (notify.Message, error) {
	et, ok := r.emails[name]
	if !ok {
		return notify.Message{}, fmt.Errorf("sspr: no message template %q", name)
	}
	var subject, text, html bytes.Buffer
	if err := et.text.ExecuteTemplate(&subject, "subject", d); err != nil {
		return notify.Message{}, fmt.Errorf("sspr: render %s subject: %w", name, err)
	}
	if err := et.text.ExecuteTemplate(&text, "text", d); err != nil {
		return notify.Message{}, fmt.Errorf("sspr: render %s text: %w", name, err)
	}
	m := notify.Message{
		Channel: channel,
		To:      to,
		Subject: strings.TrimSpace(subject.String()),
		Text:    strings.TrimLeft(text.String(), "\n"),
	}
	if et.html != nil {
		if err := et.html.ExecuteTemplate(&html, "html", d); err != nil {
			return notify.Message{}, fmt.Errorf("sspr: render %s html: %w", name, err)
		}
		m.HTML = html.String()
	}
	return m, nil
}
