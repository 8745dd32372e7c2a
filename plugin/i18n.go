package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"sort"
	"strings"

	"golang.org/x/text/language"
)

// Message catalogs: templates/messages/<language tag>.json, each a flat
// JSON object from message key to text. Texts may hold {name} placeholders
// that the caller fills. English ("en") is the reference: every other
// catalog must have exactly its keys, so a missing translation fails at
// New, not in front of a user. Adding a language is adding one file (in
// the embedded templates or in Config.Templates).

// catalogs holds every language's messages and picks one per request.
type catalogs struct {
	byLang  map[string]map[string]string
	tags    []language.Tag
	names   []string // the catalog names, in the order of tags
	matcher language.Matcher
}

const referenceLang = "en"

// loadCatalogs reads messages/*.json from the overlay (the host's files
// add to and replace the embedded ones).
func loadCatalogs(o overlay) (*catalogs, error) {
	names := map[string]bool{}
	for _, fsys := range []fs.FS{o.base, o.override} {
		if fsys == nil {
			continue
		}
		matches, err := fs.Glob(fsys, "messages/*.json")
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			names[strings.TrimSuffix(path.Base(m), ".json")] = true
		}
	}
	c := &catalogs{byLang: map[string]map[string]string{}}
	var errs []error
	for name := range names {
		tag, err := language.Parse(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("messages/%s.json: not a language tag", name))
			continue
		}
		raw, err := o.read("messages/" + name + ".json")
		if err != nil {
			errs = append(errs, fmt.Errorf("messages/%s.json: %w", name, err))
			continue
		}
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			errs = append(errs, fmt.Errorf("messages/%s.json: %w", name, err))
			continue
		}
		c.byLang[name] = m
		_ = tag
	}
	ref, ok := c.byLang[referenceLang]
	if !ok {
		errs = append(errs, errors.New("messages/en.json: missing (English is the reference catalog)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// English first, so that it is the matcher's fallback.
	order := []string{referenceLang}
	for name := range c.byLang {
		if name != referenceLang {
			order = append(order, name)
		}
	}
	sort.Strings(order[1:])
	for _, name := range order[1:] {
		if missing, extra := diffKeys(ref, c.byLang[name]); len(missing)+len(extra) > 0 {
			errs = append(errs, fmt.Errorf("messages/%s.json: lacks %v and has unknown %v", name, missing, extra))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, name := range order {
		c.tags = append(c.tags, language.MustParse(name))
		c.names = append(c.names, name)
	}
	c.matcher = language.NewMatcher(c.tags)
	return c, nil
}

func diffKeys(ref, other map[string]string) (missing, extra []string) {
	for k := range ref {
		if _, ok := other[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k := range other {
		if _, ok := ref[k]; !ok {
			extra = append(extra, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, extra
}

// match returns the catalog name that best serves the preferences (an
// Accept-Language value or a single tag); English when nothing fits.
func (c *catalogs) match(prefs ...string) string {
	var tags []language.Tag
	for _, p := range prefs {
		if p == "" {
			continue
		}
		t, _, err := language.ParseAcceptLanguage(p)
		if err == nil {
			tags = append(tags, t...)
		}
	}
	if len(tags) == 0 {
		return referenceLang
	}
	_, i, conf := c.matcher.Match(tags...)
	if conf == language.No {
		return referenceLang
	}
	return c.names[i]
}

// translator returns the translator of a language.
func (c *catalogs) translator(lang string) T {
	m, ok := c.byLang[lang]
	if !ok {
		lang, m = referenceLang, c.byLang[referenceLang]
	}
	return T{Lang: lang, m: m, ref: c.byLang[referenceLang]}
}

// T translates message keys for one language. Templates call
// {{.T.Get "key"}} or {{.T.Get "key" "name" value …}}.
type T struct {
	// Lang is the language tag of the catalog.
	Lang string
	m    map[string]string
	ref  map[string]string
}

// Get returns the text of key with {name} placeholders replaced by the
// following name/value pairs. A key in no catalog is returned as it is,
// so a flow may hand over literal text.
func (t T) Get(key string, args ...any) string {
	s, ok := t.m[key]
	if !ok {
		if s, ok = t.ref[key]; !ok {
			s = key
		}
	}
	for i := 0; i+1 < len(args); i += 2 {
		s = strings.ReplaceAll(s, "{"+fmt.Sprint(args[i])+"}", fmt.Sprint(args[i+1]))
	}
	return s
}

// locale picks the language of a request: the host's choice
// (Config.Locale) if it names a catalog, else Accept-Language.
func (p *Plugin) locale(r *http.Request) string {
	if p.s.Locale != nil {
		if l := p.s.Locale(r); l != "" {
			return p.msgs.match(l)
		}
	}
	return p.msgs.match(r.Header.Get("Accept-Language"))
}

// tr returns the translator of a request.
func (p *Plugin) tr(r *http.Request) T { return p.msgs.translator(p.locale(r)) }
