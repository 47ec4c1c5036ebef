package serve

import (
	"errors"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/train"
)

// FromPredictor adapts a run loaded with train.Load to Model. For the word models (lstm, cnn)
// it adds the check that a text has at least one token for the recipe's tokenizer (the one
// their predictors use), so that such a text is refused with 400 before it reaches the model.
// The bigru's word-piece encoder takes any text ([CLS] ... [SEP] is never empty).
func FromPredictor(p *train.Predictor) Model {
	if p.Info.Model.Kind == nn.KindBiGRU {
		return p
	}
	return wordModel{p}
}

type wordModel struct{ *train.Predictor }

func (wordModel) CheckText(text string) error {
	if len(data.BasicEnglish{}.Tokenize(text)) == 0 {
		return errors.New("no words in it")
	}
	return nil
}
