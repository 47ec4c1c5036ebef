package onnxexport

import (
	"encoding/json"
	"fmt"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/train"
)

// SidecarFormat names the sidecar's layout; it changes when a field changes meaning.
const SidecarFormat = "sentibench-onnx-sidecar/1"

// Sidecar is the JSON written beside the model (model.onnx.json): everything a user of the ONNX
// file needs to feed it exactly as sentibench feeds the model, and to read its outputs.
type Sidecar struct {
	Format    string `json:"format"`
	ModelFile string `json:"model_file"`
	// Kind is the model: cnn, lstm or bigru (the bigru file is the head over the encoder's
	// features; Encoder says how to compute them).
	Kind       string `json:"model"`
	Run        string `json:"run"`
	Checkpoint string `json:"checkpoint"`
	Opset      int    `json:"opset"`
	// Inputs and Outputs describe the graph's inputs and outputs by name.
	Inputs  map[string]string `json:"inputs"`
	Outputs map[string]string `json:"outputs"`
	// Labels names the classes by id. PositiveClass, of a binary model, is the id whose
	// probability the "probability" output is (1), PositiveLabel its name; a K-class model
	// has neither (its "probabilities" output gives every class's).
	Labels        []string `json:"labels"`
	PositiveClass int      `json:"positive_class,omitempty"`
	PositiveLabel string   `json:"positive_label,omitempty"`
	// Decision is how sentibench turns the outputs into a class.
	Decision string `json:"decision"`
	// Tokenizer is for the word models (cnn, lstm).
	Tokenizer *Tokenizer `json:"tokenizer,omitempty"`
	// Encoder is for the bigru head.
	Encoder *Encoder `json:"encoder,omitempty"`
	// ModelConfig is the run's model configuration (sentibench's config.json "model").
	ModelConfig nn.Config `json:"model_config"`
}

// Tokenizer describes how a word model's ids are made from a text.
type Tokenizer struct {
	// Kind is "basic_english" (torchtext's, with Python 3 semantics).
	Kind string `json:"kind"`
	// Steps are the tokenizer's rules, in order, as Python code would run them.
	Steps []string `json:"steps"`
	// Lowercase says how letters are lower-cased.
	Lowercase string `json:"lowercase"`
	// Vocabulary lists the tokens in id order: token Vocabulary[i] has id i.
	Vocabulary []string `json:"vocabulary"`
	// UnknownID is the id of a token not in the vocabulary; PaddingID fills positions past a
	// text's length.
	UnknownID int `json:"unknown_id"`
	PaddingID int `json:"padding_id"`
	// MaxTokens > 0 keeps the first MaxTokens tokens of a longer text; 0: no truncation.
	MaxTokens int `json:"max_tokens"`
	// EmptyText: what a text without a single token is.
	EmptyText string `json:"empty_text"`
}

// Encoder describes how the bigru head's features are computed.
type Encoder struct {
	// Name is the run's --encoder: a Hugging Face model directory or hub id.
	Name string `json:"name"`
	// Features says what one feature row is.
	Features string `json:"features"`
	// Layers are the hidden states whose mean the features are (0: the embeddings output, i:
	// layer i's output, negative from the last); empty: the last hidden state.
	Layers []int `json:"layers,omitempty"`
	// Tokenization is how the encoder's input ids are made.
	Tokenization string `json:"tokenization"`
	// TruncateHead > 0: a text longer than the encoder's maximum keeps its first TruncateHead
	// word pieces and its last (maximum-2-TruncateHead); 0: the first (maximum-2).
	TruncateHead int `json:"truncate_head"`
	// HowToRun says how to run the encoder outside sentibench.
	HowToRun string `json:"how_to_run"`
}

func newSidecar(info train.RunInfo, vocab *data.Vocab, runDir, checkpoint string) *Sidecar {
	s := &Sidecar{
		Format:     SidecarFormat,
		Kind:       info.Model.Kind,
		Run:        runDir,
		Checkpoint: checkpoint,
		Opset:      Opset,
		Outputs: map[string]string{
			OutputLogits: "float32 (batch, 1): the classifier's logit",
			OutputProb:   "float32 (batch, 1): sigmoid(logit), the probability of the positive class (positive_class)",
		},
		Labels:        info.Labels,
		PositiveClass: 1,
		Decision:      "positive_class when logit > 0 (probability > 0.5), else class 0",
		ModelConfig:   info.Model,
	}
	if len(info.Labels) > 1 {
		s.PositiveLabel = info.Labels[1]
	}
	if k := info.Model.Outputs; k > 1 {
		s.Outputs = map[string]string{
			OutputLogits: fmt.Sprintf("float32 (batch, %d): the classifier's logits, one per class in the order of labels", k),
			OutputProbs:  fmt.Sprintf("float32 (batch, %d): softmax(logits), the probability of each class in the order of labels", k),
		}
		s.PositiveClass, s.PositiveLabel = 0, ""
		s.Decision = "the class of the largest logit (the first of equal ones): labels[argmax(logits)]"
	}
	if info.Model.Kind == nn.KindBiGRU {
		s.Inputs = map[string]string{
			InputFeatures: fmt.Sprintf("float32 (batch, sequence, %d): the encoder's features per word piece, [CLS] and [SEP] included; rows past a text's length are ignored", info.Model.InputDim),
			InputLengths:  "int64 (batch): each text's number of word pieces, [CLS] and [SEP] included, at least 1",
		}
		features := "the encoder's last hidden state, one row per word piece"
		if len(info.Config.EncoderLayers) > 0 {
			features = "the mean of the listed hidden states of the encoder (layers), one row per word piece"
		}
		s.Encoder = &Encoder{
			Name:     info.Config.Encoder,
			Features: features + " ([CLS] and [SEP] included); no pooling, no normalisation",
			Layers:   info.Config.EncoderLayers,
			Tokenization: "the encoder's own WordPiece tokenizer (its vocab.txt and tokenizer settings): [CLS], the word pieces, [SEP], " +
				"at most min(512, max_position_embeddings) ids in all; one text at a time or batched with an attention mask (padding changes nothing)",
			TruncateHead: info.Config.TruncateHead,
			HowToRun: "export the encoder itself to ONNX (e.g. optimum-cli export onnx --model NAME --task feature-extraction DIR, " +
				"with output_hidden_states when layers is set), run it on the tokenized text, take last_hidden_state (or the mean of the " +
				"listed hidden_states) as features, and feed them with their lengths to this head",
		}
		return s
	}
	s.Inputs = map[string]string{
		InputIDs:     "int64 (batch, sequence): the token ids, row b padded past lengths[b] (with padding_id, or any id of the vocabulary: padding changes nothing)",
		InputLengths: "int64 (batch): each text's number of tokens (after truncation to max_tokens), at least 1",
	}
	s.Tokenizer = &Tokenizer{
		Kind: "basic_english",
		Steps: []string{
			`line = line.lower()`,
			`line = re.sub(r"\'", " '  ", line)`,
			`line = re.sub(r"\"", "", line)`,
			`line = re.sub(r"\.", " . ", line)`,
			`line = re.sub(r"<br \/>", " ", line)`,
			`line = re.sub(r",", " , ", line)`,
			`line = re.sub(r"\(", " ( ", line)`,
			`line = re.sub(r"\)", " ) ", line)`,
			`line = re.sub(r"\!", " ! ", line)`,
			`line = re.sub(r"\?", " ? ", line)`,
			`line = re.sub(r"\;", " ", line)`,
			`line = re.sub(r"\:", " ", line)`,
			`line = re.sub(r"\s+", " ", line)`,
			`tokens = line.split()`,
		},
		Lowercase:  "Python 3's str.lower() (full Unicode lower-casing: U+0130 becomes i + U+0307, a final capital sigma becomes ς)",
		Vocabulary: vocab.Tokens(),
		UnknownID:  int(data.UNK),
		PaddingID:  max(info.Model.PadID, 0),
		MaxTokens:  info.Config.MaxLen,
		EmptyText:  "a text with no token is an error in sentibench (lengths must be at least 1)",
	}
	return s
}

func (s *Sidecar) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("onnxexport: encoding the sidecar: %w", err)
	}
	return append(b, '\n'), nil
}
