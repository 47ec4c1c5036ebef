package serve

import (
	"errors"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/train"
)

// FromPredictor adapts a run loaded with train.Load to Model. It adds the check that a text
// has at least one token for the recipe's tokenizer (the one train.Load's predictors use),
// so such a text is refused with 400 before it reaches the model.
func FromPredictor(p *train.Predictor) Model { return predictorModel{p} }

type predictorModel struct{ *train.Predictor }

func (predictorModel) CheckText(text string) error {
	if len(data.BasicEnglish{}.Tokenize(text)) == 0 {
		return errors.New("no words in it")
	}
	return nil
}
