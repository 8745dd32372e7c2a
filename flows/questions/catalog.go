package questions

import (
	"encoding/json"
	"fmt"
	"io/fs"

	"github.com/sspr-go/sspr/templates"
)

// DefaultQuestions returns the questions offered when [Config.Questions]
// is empty: message keys of the plugin's catalogs. They ask for things a
// stranger cannot read off a social-media profile or a public record
// (not a mother's maiden name, a pet's name, a birthplace or a school),
// and that have more possible answers than a favourite colour.
func DefaultQuestions() []string {
	return []string{
		"questions.q.first_teacher",
		"questions.q.parents_met",
		"questions.q.childhood_toy",
		"questions.q.first_album",
		"questions.q.oldest_cousin",
		"questions.q.first_dish",
		"questions.q.friend_street",
		"questions.q.first_concert",
	}
}

// questionTexts returns, for each question, its words in every language
// of the embedded default catalogs (and the words of the key or literal
// text itself), for the check that an answer does not repeat its
// question. A host's own catalogs are not consulted: the check is a
// guard against careless answers, not a security boundary.
func questionTexts(questions []string) (map[string][][]string, error) {
	files, err := fs.Glob(templates.Default(), "messages/*.json")
	if err != nil {
		return nil, fmt.Errorf("questions: catalogs: %w", err)
	}
	var catalogs []map[string]string
	for _, name := range files {
		raw, err := fs.ReadFile(templates.Default(), name)
		if err != nil {
			return nil, fmt.Errorf("questions: catalogs: %w", err)
		}
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("questions: catalogs: %s: %w", name, err)
		}
		catalogs = append(catalogs, m)
	}
	texts := make(map[string][][]string, len(questions))
	for _, q := range questions {
		texts[q] = append(texts[q], words(q))
		for _, m := range catalogs {
			if t, ok := m[q]; ok {
				texts[q] = append(texts[q], words(t))
			}
		}
	}
	return texts, nil
}
