package data

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tokenizer turns a text into tokens. BasicEnglish is the recipe's; a word-piece tokenizer for
// the encoder models fits the same interface. Implementations must be safe for concurrent use.
type Tokenizer interface {
	// Name identifies the tokenizer (e.g. "basic_english"), for logs and checkpoints.
	Name() string
	// Tokenize returns the text's tokens, in order.
	Tokenize(text string) []string
}

// TokenAppender is implemented by tokenizers that can append to a caller's slice, which saves
// an allocation per text in bulk tokenization (TokenizeAll uses it when present).
type TokenAppender interface {
	AppendTokens(dst []string, text string) []string
}

// BasicEnglish is torchtext's basic_english tokenizer with Python 3 semantics, as RECIPE.md
// states it and torch_ref.py runs it:
//
//	line = line.lower()               # Python's str.lower()
//	for pattern, repl in [(r"\'", " '  "), (r"\"", ""), (r"\.", " . "), (r"<br \/>", " "),
//	                      (r",", " , "), (r"\(", " ( "), (r"\)", " ) "), (r"\!", " ! "),
//	                      (r"\?", " ? "), (r"\;", " "), (r"\:", " "), (r"\s+", " ")]:
//	    line = re.sub(pattern, repl, line)
//	return line.split()               # Unicode whitespace, as str.isspace()
//
// It is a hand-written two-pass scanner, not a chain of regular expressions, and gives exactly
// the same tokens (checked against Python's output on real reviews, and against a regexp
// transcription by a fuzz test). What the substitutions amount to:
//   - lower-casing as Python does it: unicode.ToLower for every code point except U+0130
//     (capital I with dot above, which Python lowers to "i" + U+0307, and which one unlabelled
//     review contains) and U+03A3 (capital sigma, which Python lowers to the final form ς at
//     the end of a word: Unicode's Final_Sigma rule);
//   - `"` is deleted (so `a"b` is one token `ab`, and `<br "/>` becomes `<br />`);
//   - each of ' . , ( ) ! ? is a token on its own;
//   - `<br />` (after lower-casing and deleting quotes, so also `<BR />`), ; and : separate
//     tokens, as does Unicode whitespace: \t \n \v \f \r, \x1c-\x1f, space, U+0085, U+00A0,
//     U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
//
// Invalid UTF-8 (which Python would have refused to decode) is kept byte for byte inside
// tokens.
type BasicEnglish struct{}

// Name returns "basic_english".
func (BasicEnglish) Name() string { return "basic_english" }

// Tokenize returns text's tokens.
func (b BasicEnglish) Tokenize(text string) []string { return b.AppendTokens(nil, text) }

// byte classes of the scanner's second pass
const (
	cWord  = iota // part of a token
	cSep          // separates tokens: ASCII whitespace, ';', ':'
	cPunct        // a token of its own: ' . , ( ) ! ?
	cLess         // '<': maybe the start of "<br />"
	cHigh         // first byte of a multi-byte UTF-8 sequence (or an invalid byte)
)

var asciiClass = func() (t [256]byte) {
	for c := 0x80; c < 256; c++ {
		t[c] = cHigh
	}
	for _, c := range "\t\n\v\f\r\x1c\x1d\x1e\x1f ;:" {
		t[c] = cSep
	}
	for _, c := range "'.,()!?" {
		t[c] = cPunct
	}
	t['<'] = cLess
	return t
}()

// AppendTokens appends text's tokens to dst. The tokens share one string (the lower-cased
// text), so a caller that keeps a few tokens of a long text should copy them (strings.Clone).
func (BasicEnglish) AppendTokens(dst []string, text string) []string {
	s := lowerNoQuotes(text)
	start := -1 // start of the token being scanned, -1 when between tokens
	for i := 0; i < len(s); {
		switch asciiClass[s[i]] {
		case cWord:
			if start < 0 {
				start = i
			}
			i++
		case cSep:
			if start >= 0 {
				dst = append(dst, s[start:i])
				start = -1
			}
			i++
		case cPunct:
			if start >= 0 {
				dst = append(dst, s[start:i])
				start = -1
			}
			dst = append(dst, s[i:i+1])
			i++
		case cLess:
			if strings.HasPrefix(s[i:], "<br />") {
				if start >= 0 {
					dst = append(dst, s[start:i])
					start = -1
				}
				i += len("<br />")
				continue
			}
			if start < 0 {
				start = i
			}
			i++
		case cHigh:
			r, size := utf8.DecodeRuneInString(s[i:])
			if isSpaceHigh(r) && size > 1 {
				if start >= 0 {
					dst = append(dst, s[start:i])
					start = -1
				}
			} else if start < 0 {
				start = i
			}
			i += size
		}
	}
	if start >= 0 {
		dst = append(dst, s[start:])
	}
	return dst
}

// isSpaceHigh reports whether a non-ASCII code point is whitespace for Python's str.isspace().
func isSpaceHigh(r rune) bool {
	switch {
	case r == 0x85, r == 0xA0, r == 0x1680, r >= 0x2000 && r <= 0x200A, r == 0x2028, r == 0x2029,
		r == 0x202F, r == 0x205F, r == 0x3000:
		return true
	}
	return false
}

// isPySpace reports whether r is whitespace for Python's str.isspace() and re's \s.
func isPySpace(r rune) bool {
	if r < 0x80 {
		return asciiClass[r] == cSep && r != ';' && r != ':'
	}
	return isSpaceHigh(r)
}

// lowerNoQuotes returns text lower-cased as Python's str.lower() does, with every '"' removed.
func lowerNoQuotes(text string) string {
	// Most of a review needs no change: copy such runs whole.
	var b strings.Builder
	b.Grow(len(text))
	run := 0 // start of the pending run of bytes to copy as they are
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			if c != '"' && (c < 'A' || c > 'Z') {
				i++
				continue
			}
			b.WriteString(text[run:i])
			if c != '"' {
				b.WriteByte(c + ('a' - 'A'))
			}
			i++
			run = i
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		var l rune
		switch {
		case r == utf8.RuneError && size == 1:
			i++ // invalid UTF-8: keep the byte
			continue
		case r == 0x130, r == 0x3A3:
			l = -1
		default:
			if l = unicode.ToLower(r); l == r {
				i += size
				continue
			}
		}
		b.WriteString(text[run:i])
		switch {
		case r == 0x130: // İ: Python gives "i" + COMBINING DOT ABOVE
			b.WriteString("i\u0307")
		case r == 0x3A3: // Σ: σ, or ς at the end of a word
			if finalSigma(text, i, i+size) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(l)
		}
		i += size
		run = i
	}
	if run == 0 {
		return text // nothing to change
	}
	b.WriteString(text[run:])
	return b.String()
}

// finalSigma applies Unicode's Final_Sigma condition (as CPython's str.lower() does) to the
// capital sigma at text[i:j]: a cased letter before it (skipping case-ignorable code points),
// and no cased letter after it (skipping case-ignorable code points).
func finalSigma(text string, i, j int) bool {
	before := rune(-1)
	for k := i; k > 0; {
		r, size := utf8.DecodeLastRuneInString(text[:k])
		k -= size
		if !isCaseIgnorable(r) {
			before = r
			break
		}
	}
	if before < 0 || !isCased(before) {
		return false
	}
	for k := j; k < len(text); {
		r, size := utf8.DecodeRuneInString(text[k:])
		k += size
		if !isCaseIgnorable(r) {
			return !isCased(r)
		}
	}
	return true
}

// isCased is Unicode's Cased property: Lowercase, Uppercase or Lt.
func isCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

// isCaseIgnorable is Unicode's Case_Ignorable property: general category Mn, Me, Cf, Lm or Sk,
// or Word_Break MidLetter, MidNumLet or Single_Quote.
func isCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}
