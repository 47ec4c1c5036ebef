package train

import (
	"github.com/sentibench/sentibench/internal/progress"
)

// DefaultMaxLen is the default bound on a review's tokens for the word models (Config.MaxLen):
// longer reviews are truncated to their first DefaultMaxLen tokens. It keeps every IMDB review
// whole, with room to spare (the README gives the longest), and bounds the memory of a batch
// whatever the data.
const DefaultMaxLen = 8192

// MaxTokens is the run's bound on a review's tokens (word models): MaxLen, or DefaultMaxLen for
// a run that recorded none (made before the bound existed).
func (c Config) MaxTokens() int {
	if c.MaxLen > 0 {
		return c.MaxLen
	}
	return DefaultMaxLen
}

// machineBatchBudget is the most memory one batch's buffers may take: half the machine's
// physical memory (0 when unknown).
func machineBatchBudget() int64 { return physicalMemory() / 2 }

// plural writes "1 review" or "2 reviews" (digits grouped).
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return progress.FormatCount(int64(n)) + " " + noun + "s"
}
