package data

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// WordPiece is the BERT tokenizer: the same ids, for any text, as Hugging Face's fast BERT
// tokenizer (tokenizers' BertNormalizer + BertPreTokenizer + WordPiece, with the [CLS] ... [SEP]
// template), which is what transformers' AutoTokenizer gives for BERT-family models and what
// ../shared/bench/torch_ref.py uses. The steps, in order:
//
//  1. Special tokens ([CLS], [SEP], [PAD], [UNK], [MASK] and any other added special token)
//     written literally in the raw text are cut out first and map to their ids.
//  2. Normalisation of the text between them (each step when the settings ask for it):
//     clean text (drop U+0000, U+FFFD and "other" characters: categories Cc, Cf, Co, Cs except
//     \t \n \r; map every White_Space character to ' '), spaces around CJK ideographs, accent
//     stripping (NFD, then drop the Mn marks), lower-casing (per character, full mapping).
//  3. Pre-tokenisation: split on white space (dropped) and on punctuation (each punctuation
//     character is its own word): ASCII punctuation !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ and every
//     Unicode P* character.
//  4. WordPiece per word: greedy longest match from the left, continuation pieces carry the
//     "##" prefix; a word with a part that matches nothing, or longer than MaxCharsPerWord
//     characters (100), becomes the single [UNK].
//
// A WordPiece is read-only after loading and safe for concurrent use.
type WordPiece struct {
	// Settings of the normaliser (tokenizer.json's BertNormalizer, or tokenizer_config.json's
	// do_lower_case, strip_accents, tokenize_chinese_chars).
	CleanText, ChineseChars, StripAccents, Lowercase bool
	// Prefix marks continuation pieces ("##").
	Prefix string
	// MaxCharsPerWord: longer words become [UNK] (100).
	MaxCharsPerWord int
	// Ids of the special tokens.
	UnkID, CLSID, SEPID, PadID int32

	tokens  []string         // id -> token
	initial map[string]int32 // pieces that may start a word
	cont    map[string]int32 // continuation pieces, without the prefix
	special []specialToken   // matched literally in the raw text, longest first
	source  string           // the file it came from, for messages
}

type specialToken struct {
	text string
	id   int32
}

// LoadWordPiece reads the tokenizer of a Hugging Face model directory: tokenizer.json when it
// exists (its WordPiece model, BertNormalizer settings, special tokens), otherwise vocab.txt
// with the settings of tokenizer_config.json (BertTokenizer's defaults when absent: lower-case,
// accents stripped as lower-casing says, CJK handling on).
//
// tokenizer.json's own truncation and padding settings are ignored: callers choose the maximum
// length (Encode) and pad batches themselves (Pad), as transformers does when it is called with
// truncation=True, max_length=N, padding=False.
func LoadWordPiece(dir string) (*WordPiece, error) {
	p := filepath.Join(dir, "tokenizer.json")
	if _, err := os.Stat(p); err == nil {
		return LoadWordPieceJSON(p)
	}
	p = filepath.Join(dir, "vocab.txt")
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("wordpiece: %s holds neither tokenizer.json nor vocab.txt", dir)
	}
	cfg, err := readTokenizerConfig(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return nil, err
	}
	return LoadWordPieceVocab(p, cfg)
}

// VocabConfig holds the settings of a tokenizer read from vocab.txt (tokenizer_config.json's
// fields of BertTokenizer). DefaultVocabConfig gives BertTokenizer's defaults.
type VocabConfig struct {
	Lowercase    bool
	StripAccents *bool // nil: as Lowercase
	ChineseChars bool
	Unk, CLS     string
	SEP, Pad     string
	Mask         string
}

// DefaultVocabConfig is BertTokenizer's default configuration (an uncased model).
func DefaultVocabConfig() VocabConfig {
	return VocabConfig{Lowercase: true, ChineseChars: true,
		Unk: "[UNK]", CLS: "[CLS]", SEP: "[SEP]", Pad: "[PAD]", Mask: "[MASK]"}
}

func readTokenizerConfig(path string) (VocabConfig, error) {
	cfg := DefaultVocabConfig()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("wordpiece: %w", err)
	}
	var raw struct {
		DoLowerCase          *bool  `json:"do_lower_case"`
		StripAccents         *bool  `json:"strip_accents"`
		TokenizeChineseChars *bool  `json:"tokenize_chinese_chars"`
		Unk                  any    `json:"unk_token"`
		CLS                  any    `json:"cls_token"`
		SEP                  any    `json:"sep_token"`
		Pad                  any    `json:"pad_token"`
		Mask                 any    `json:"mask_token"`
		TokenizerClass       string `json:"tokenizer_class"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return cfg, fmt.Errorf("wordpiece: %s: not valid JSON: %w", path, err)
	}
	if raw.TokenizerClass != "" && !strings.Contains(raw.TokenizerClass, "Bert") {
		return cfg, fmt.Errorf("wordpiece: %s: tokenizer_class %q is not a BERT WordPiece tokenizer", path, raw.TokenizerClass)
	}
	if raw.DoLowerCase != nil {
		cfg.Lowercase = *raw.DoLowerCase
	}
	cfg.StripAccents = raw.StripAccents
	if raw.TokenizeChineseChars != nil {
		cfg.ChineseChars = *raw.TokenizeChineseChars
	}
	for _, f := range []struct {
		v   any
		dst *string
	}{{raw.Unk, &cfg.Unk}, {raw.CLS, &cfg.CLS}, {raw.SEP, &cfg.SEP}, {raw.Pad, &cfg.Pad}, {raw.Mask, &cfg.Mask}} {
		switch v := f.v.(type) {
		case string:
			*f.dst = v
		case map[string]any: // AddedToken written out: {"content": "[UNK]", ...}
			if s, ok := v["content"].(string); ok {
				*f.dst = s
			}
		}
	}
	return cfg, nil
}

// LoadWordPieceVocab reads vocab.txt (one token a line, the line number is the id).
func LoadWordPieceVocab(path string, cfg VocabConfig) (*WordPiece, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("wordpiece: %w", err)
	}
	defer f.Close()
	var tokens []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// BertTokenizer's load_vocab strips the line end only ("\n"); tokens never hold spaces.
		tokens = append(tokens, strings.TrimRight(sc.Text(), "\r\n"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("wordpiece: reading %s: %w", path, err)
	}
	vocab := make(map[string]int32, len(tokens))
	for i, t := range tokens {
		if _, dup := vocab[t]; !dup { // the first line wins, as in BertTokenizer
			vocab[t] = int32(i)
		}
	}
	strip := cfg.Lowercase
	if cfg.StripAccents != nil {
		strip = *cfg.StripAccents
	}
	w := &WordPiece{
		CleanText: true, ChineseChars: cfg.ChineseChars, StripAccents: strip, Lowercase: cfg.Lowercase,
		Prefix: "##", MaxCharsPerWord: 100, source: path,
	}
	var specials []specialToken
	for _, s := range []struct {
		name string
		dst  *int32
	}{{cfg.Unk, &w.UnkID}, {cfg.CLS, &w.CLSID}, {cfg.SEP, &w.SEPID}, {cfg.Pad, &w.PadID}, {cfg.Mask, nil}} {
		id, ok := vocab[s.name]
		if !ok {
			if s.dst == nil { // [MASK] is optional
				continue
			}
			return nil, fmt.Errorf("wordpiece: %s has no special token %q", path, s.name)
		}
		if s.dst != nil {
			*s.dst = id
		}
		specials = append(specials, specialToken{s.name, id})
	}
	w.setVocab(tokens, vocab, specials)
	return w, nil
}

// tokenizerJSON is the part of tokenizer.json that a BERT WordPiece tokenizer uses.
type tokenizerJSON struct {
	AddedTokens []struct {
		ID         int32  `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer *struct {
		Type               string `json:"type"`
		CleanText          *bool  `json:"clean_text"`
		HandleChineseChars *bool  `json:"handle_chinese_chars"`
		StripAccents       *bool  `json:"strip_accents"`
		Lowercase          *bool  `json:"lowercase"`
	} `json:"normalizer"`
	PreTokenizer *struct {
		Type string `json:"type"`
	} `json:"pre_tokenizer"`
	PostProcessor *struct {
		Type          string          `json:"type"`
		SEP           json.RawMessage `json:"sep"` // BertProcessing: ["[SEP]", 102]
		CLS           json.RawMessage `json:"cls"`
		SpecialTokens map[string]struct {
			IDs []int32 `json:"ids"`
		} `json:"special_tokens"` // TemplateProcessing
		Single []map[string]struct {
			ID string `json:"id"`
		} `json:"single"`
	} `json:"post_processor"`
	Model struct {
		Type                    string           `json:"type"`
		UnkToken                string           `json:"unk_token"`
		ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
		MaxInputCharsPerWord    *int             `json:"max_input_chars_per_word"`
		Vocab                   map[string]int32 `json:"vocab"`
	} `json:"model"`
}

// LoadWordPieceJSON reads a Hugging Face tokenizer.json holding a BERT WordPiece tokenizer.
func LoadWordPieceJSON(path string) (*WordPiece, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wordpiece: %w", err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("wordpiece: %s: %s", path, fmt.Sprintf(format, a...))
	}
	var tj tokenizerJSON
	if err := json.Unmarshal(b, &tj); err != nil {
		return nil, bad("not a valid tokenizer.json: %v", err)
	}
	if tj.Model.Type != "WordPiece" {
		return nil, bad("model type %q is not WordPiece (only BERT-family WordPiece tokenizers are supported)", tj.Model.Type)
	}
	if len(tj.Model.Vocab) == 0 {
		return nil, bad("model.vocab is empty")
	}
	w := &WordPiece{CleanText: true, ChineseChars: true, StripAccents: true, Lowercase: true,
		Prefix: "##", MaxCharsPerWord: 100, source: path}
	if p := tj.Model.ContinuingSubwordPrefix; p != nil {
		w.Prefix = *p
	}
	if m := tj.Model.MaxInputCharsPerWord; m != nil {
		w.MaxCharsPerWord = *m
	}
	if n := tj.Normalizer; n == nil {
		w.CleanText, w.ChineseChars, w.StripAccents, w.Lowercase = false, false, false, false
	} else {
		if n.Type != "BertNormalizer" {
			return nil, bad("normalizer type %q is not supported (want BertNormalizer)", n.Type)
		}
		set := func(dst *bool, v *bool) {
			if v != nil {
				*dst = *v
			}
		}
		set(&w.CleanText, n.CleanText)
		set(&w.ChineseChars, n.HandleChineseChars)
		set(&w.Lowercase, n.Lowercase)
		w.StripAccents = w.Lowercase // strip_accents null: as lowercase
		set(&w.StripAccents, n.StripAccents)
	}
	if p := tj.PreTokenizer; p == nil || p.Type != "BertPreTokenizer" {
		typ := "none"
		if p != nil {
			typ = p.Type
		}
		return nil, bad("pre_tokenizer %q is not supported (want BertPreTokenizer)", typ)
	}
	// The id space: the vocabulary plus added tokens (which normally repeat vocabulary entries).
	n := 0
	for _, id := range tj.Model.Vocab {
		if id < 0 {
			return nil, bad("model.vocab holds the negative id %d", id)
		}
		n = max(n, int(id)+1)
	}
	for _, a := range tj.AddedTokens {
		if a.ID < 0 {
			return nil, bad("added token %q has the negative id %d", a.Content, a.ID)
		}
		n = max(n, int(a.ID)+1)
	}
	if n > 4*len(tj.Model.Vocab)+len(tj.AddedTokens)+1024 {
		return nil, bad("ids run to %d for %d tokens (corrupt vocabulary?)", n-1, len(tj.Model.Vocab))
	}
	tokens := make([]string, n)
	for t, id := range tj.Model.Vocab {
		tokens[id] = t
	}
	var specials []specialToken
	for _, a := range tj.AddedTokens {
		if a.SingleWord || a.LStrip || a.RStrip || a.Normalized {
			return nil, bad("added token %q uses single_word/lstrip/rstrip/normalized, which are not supported", a.Content)
		}
		if a.Content == "" {
			return nil, bad("an added token has empty content")
		}
		tokens[a.ID] = a.Content
		specials = append(specials, specialToken{a.Content, a.ID})
	}
	unk, ok := tj.Model.Vocab[tj.Model.UnkToken]
	if !ok {
		return nil, bad("the unknown token %q is not in model.vocab", tj.Model.UnkToken)
	}
	w.UnkID = unk
	// [CLS] and [SEP] from the post-processor.
	cls, sep := "[CLS]", "[SEP]"
	if pp := tj.PostProcessor; pp != nil {
		switch pp.Type {
		case "BertProcessing":
			var c, s []any
			if json.Unmarshal(pp.CLS, &c) == nil && len(c) == 2 {
				cls, _ = c[0].(string)
			}
			if json.Unmarshal(pp.SEP, &s) == nil && len(s) == 2 {
				sep, _ = s[0].(string)
			}
		case "TemplateProcessing":
			// single: SpecialToken A SpecialToken
			var names []string
			for _, item := range pp.Single {
				if st, ok := item["SpecialToken"]; ok {
					names = append(names, st.ID)
				}
			}
			if len(pp.Single) != 3 || len(names) != 2 {
				return nil, bad("post_processor template %v is not [CLS] $A [SEP]", pp.Single)
			}
			cls, sep = names[0], names[1]
		default:
			return nil, bad("post_processor type %q is not supported (want TemplateProcessing or BertProcessing)", pp.Type)
		}
	}
	lookup := func(name string) (int32, error) {
		for _, s := range specials {
			if s.text == name {
				return s.id, nil
			}
		}
		if id, ok := tj.Model.Vocab[name]; ok {
			return id, nil
		}
		return 0, bad("special token %q is neither an added token nor in model.vocab", name)
	}
	if w.CLSID, err = lookup(cls); err != nil {
		return nil, err
	}
	if w.SEPID, err = lookup(sep); err != nil {
		return nil, err
	}
	if w.PadID, err = lookup("[PAD]"); err != nil {
		w.PadID = 0 // BertModel's pad_token_id default; padding positions are masked anyway
	}
	w.setVocab(tokens, tj.Model.Vocab, specials)
	return w, nil
}

func (w *WordPiece) setVocab(tokens []string, vocab map[string]int32, specials []specialToken) {
	w.tokens = tokens
	w.initial = make(map[string]int32, len(vocab))
	w.cont = make(map[string]int32, len(vocab)/4)
	for t, id := range vocab {
		if w.Prefix != "" && strings.HasPrefix(t, w.Prefix) {
			w.cont[t[len(w.Prefix):]] = id
		}
		w.initial[t] = id
	}
	sort.SliceStable(specials, func(i, j int) bool { return len(specials[i].text) > len(specials[j].text) })
	w.special = specials
}

// VocabSize is the number of ids.
func (w *WordPiece) VocabSize() int { return len(w.tokens) }

// Token returns the token with the given id ("" when out of range).
func (w *WordPiece) Token(id int32) string {
	if id < 0 || int(id) >= len(w.tokens) {
		return ""
	}
	return w.tokens[id]
}

// Fingerprint is a hash of everything that decides the ids: the vocabulary in id order and every
// setting. Two tokenizers with the same fingerprint give the same ids for every text.
func (w *WordPiece) Fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "wordpiece v1 clean=%v chinese=%v strip=%v lower=%v prefix=%q max=%d unk=%d cls=%d sep=%d pad=%d\n",
		w.CleanText, w.ChineseChars, w.StripAccents, w.Lowercase, w.Prefix, w.MaxCharsPerWord,
		w.UnkID, w.CLSID, w.SEPID, w.PadID)
	var n [8]byte
	for _, t := range w.tokens {
		binary.LittleEndian.PutUint64(n[:], uint64(len(t)))
		h.Write(n[:])
		h.Write([]byte(t))
	}
	specials := append([]specialToken(nil), w.special...)
	sort.Slice(specials, func(i, j int) bool { return specials[i].text < specials[j].text })
	for _, s := range specials {
		fmt.Fprintf(h, "special %q %d\n", s.text, s.id)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Tokenize returns the word-piece ids of text, without [CLS]/[SEP] and without truncation.
func (w *WordPiece) Tokenize(text string) []int32 {
	return w.appendIDs(nil, text, -1)
}

// Encode returns the model input for text: [CLS], the first maxLen-2 word pieces, [SEP].
// maxLen is the model's maximum (the recipe: min(512, max_position_embeddings)); maxLen <= 0
// means no truncation. maxLen 1 or 2 leaves no room for text: [CLS] [SEP] (as transformers).
func (w *WordPiece) Encode(text string, maxLen int) []int32 {
	limit := -1
	if maxLen > 0 {
		limit = max(maxLen-2, 0)
	}
	ids := make([]int32, 1, 64)
	ids[0] = w.CLSID
	ids = w.appendIDs(ids, text, limit)
	return append(ids, w.SEPID)
}

// EncodeHeadTail is Encode with head+tail truncation (Sun et al. 2019, "How to Fine-Tune BERT
// for Text Classification?", whose best for IMDB was head 128 + tail 382): a text of more than
// maxLen-2 word pieces keeps its first head pieces and its last maxLen-2-head, so that the end of
// a long review, where its verdict often is, is not lost. head <= 0, head >= maxLen-2 or
// maxLen <= 0 is Encode.
func (w *WordPiece) EncodeHeadTail(text string, maxLen, head int) []int32 {
	limit := maxLen - 2
	if maxLen <= 0 || head <= 0 || head >= limit {
		return w.Encode(text, maxLen)
	}
	ids := make([]int32, 1, 64)
	ids[0] = w.CLSID
	ids = w.appendIDs(ids, text, -1)
	if n := len(ids) - 1; n > limit {
		tail := limit - head
		ids = append(ids[:1+head], ids[len(ids)-tail:]...)
	}
	return append(ids, w.SEPID)
}

// Pad lays seqs out as one row-major [B, T] batch (T the longest length), padded with PadID,
// and returns the attention mask (1 for a real position, 0 for padding) beside it.
func (w *WordPiece) Pad(seqs [][]int32) (ids, mask []int32, T int) {
	for _, s := range seqs {
		T = max(T, len(s))
	}
	ids = make([]int32, len(seqs)*T)
	mask = make([]int32, len(seqs)*T)
	for b, s := range seqs {
		row := ids[b*T : (b+1)*T]
		copy(row, s)
		for t := len(s); t < T; t++ {
			row[t] = w.PadID
		}
		for t := range s {
			mask[b*T+t] = 1
		}
	}
	return ids, mask, T
}

// appendIDs tokenizes text onto dst, stopping once limit pieces were added (limit < 0: no limit).
func (w *WordPiece) appendIDs(dst []int32, text string, limit int) []int32 {
	start := len(dst)
	full := func() bool { return limit >= 0 && len(dst)-start >= limit }
	for text != "" && !full() {
		// Cut out the leftmost (then longest) special token written in the raw text.
		at, sp := -1, specialToken{}
		for _, s := range w.special {
			if i := strings.Index(text, s.text); i >= 0 && (at < 0 || i < at) {
				at, sp = i, s // longest first: an equal position keeps the longer one
			}
		}
		segment := text
		if at >= 0 {
			segment = text[:at]
		}
		dst = w.appendSegment(dst, segment, start, limit)
		if at < 0 {
			break
		}
		if !full() {
			dst = append(dst, sp.id)
		}
		text = text[at+len(sp.text):]
	}
	if limit >= 0 && len(dst)-start > limit {
		dst = dst[:start+limit]
	}
	return dst
}

// appendSegment normalises, splits and word-pieces a text without special tokens.
func (w *WordPiece) appendSegment(dst []int32, text string, start, limit int) []int32 {
	text = w.Normalize(text)
	word := -1 // start of the current word in text, or -1
	flush := func(end int) {
		if word >= 0 {
			dst = w.appendWord(dst, text[word:end])
			word = -1
		}
	}
	for i, r := range text {
		if limit >= 0 && len(dst)-start >= limit {
			return dst
		}
		switch {
		case isBertSpace(r):
			flush(i)
		case isBertPunct(r):
			flush(i)
			dst = w.appendWord(dst, text[i:i+utf8.RuneLen(r)])
		default:
			if word < 0 {
				word = i
			}
		}
	}
	flush(len(text))
	return dst
}

// appendWord adds the word pieces of one word (greedy longest match first).
func (w *WordPiece) appendWord(dst []int32, word string) []int32 {
	if utf8.RuneCountInString(word) > w.MaxCharsPerWord {
		return append(dst, w.UnkID)
	}
	n := len(dst)
	for start := 0; start < len(word); {
		end := len(word)
		found := false
		for end > start {
			var id int32
			var ok bool
			if start == 0 {
				id, ok = w.initial[word[:end]]
			} else {
				id, ok = w.cont[word[start:end]]
			}
			if ok {
				dst = append(dst, id)
				found = true
				break
			}
			_, size := utf8.DecodeLastRuneInString(word[start:end])
			end -= size
		}
		if !found {
			return append(dst[:n], w.UnkID)
		}
		start = end
	}
	return dst
}

// Normalize applies the normaliser's steps (clean text, CJK spacing, accent stripping,
// lower-casing) to text, as tokenizers' BertNormalizer does.
func (w *WordPiece) Normalize(text string) string {
	ascii := true
	for i := 0; i < len(text); i++ {
		if c := text[i]; c >= utf8.RuneSelf || (c < 0x20 && c != ' ') || c == 0x7f {
			ascii = false
			break
		}
	}
	if ascii { // the common case: printable ASCII needs at most lower-casing
		if w.Lowercase {
			return strings.ToLower(text)
		}
		return text
	}
	var b strings.Builder
	b.Grow(len(text) + 8)
	for _, r := range text {
		if w.CleanText {
			if r == 0 || r == utf8.RuneError || isBertControl(r) {
				continue
			}
			if isBertSpace(r) {
				r = ' '
			}
		}
		if w.ChineseChars && isChineseChar(r) {
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
			continue
		}
		b.WriteRune(r)
	}
	s := b.String()
	if w.StripAccents {
		d := norm.NFD.String(s)
		b.Reset()
		for _, r := range d {
			if !unicode.Is(unicode.Mn, r) {
				b.WriteRune(r)
			}
		}
		s = b.String()
	}
	if w.Lowercase {
		b.Reset()
		for _, r := range s {
			if r == 'İ' { // the one unconditional multi-character lower-case mapping
				b.WriteString("i\u0307")
				continue
			}
			b.WriteRune(unicode.ToLower(r))
		}
		s = b.String()
	}
	return s
}

// isBertSpace is tokenizers' is_whitespace: \t \n \r and Unicode White_Space.
func isBertSpace(r rune) bool { return unicode.IsSpace(r) }

// isBertControl is tokenizers' is_control: the "other" categories (Cc, Cf, Co, Cs; not the
// unassigned Cn), except \t \n \r, which count as white space.
func isBertControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}

// isBertPunct is BertPreTokenizer's punctuation: ASCII punctuation or any Unicode P* character.
func isBertPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return (r >= '!' && r <= '/') || (r >= ':' && r <= '@') || (r >= '[' && r <= '`') || (r >= '{' && r <= '~')
	}
	return unicode.IsPunct(r)
}

// isChineseChar: the CJK Unified Ideographs blocks (as tokenizers defines them).
func isChineseChar(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) || (r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B920 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}
