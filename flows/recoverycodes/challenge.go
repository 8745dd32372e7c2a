package recoverycodes

import (
	"time"

	"github.com/sspr-go/sspr/flows/internal/challenge"
)

// Attempt counting of a journey's challenge (see package
// flows/internal/challenge): a response is accepted at most once per
// challenge, and MaxAttempts wrong ones kill it.
const (
	// ChallengeTTL is how long a challenge accepts responses.
	ChallengeTTL = 5 * time.Minute
	// MaxAttempts is the number of wrong responses a challenge accepts.
	MaxAttempts = 5
)

// challenges counts the attempts of this flow's challenges.
func challenges() challenge.Counter {
	return challenge.Counter{Flow: ID, TTL: ChallengeTTL, MaxAttempts: MaxAttempts}
}
