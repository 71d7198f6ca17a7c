package predict_test

import (
	"fmt"
	"log"
	"os"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/predict"
	"github.com/gotrain/gotrain/tokenize"
)

// Predicting one persona's answer distribution for a survey question, here
// with a tiny random model (a finetuned one in practice).
func Example() {
	dir, _ := os.MkdirTemp("", "gotrain-example")
	defer os.RemoveAll(dir)
	if _, err := model.InitCheckpoint(dir, model.InitOptions{Arch: model.Qwen2, Size: "tiny", DType: "f32", Seed: 1}); err != nil {
		log.Fatal(err)
	}
	if err := tokenize.WriteBundled(dir, "qwen2.5"); err != nil {
		log.Fatal(err)
	}
	m, err := model.Load(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	tok, _ := tokenize.Load(dir)
	tmpl, _ := tok.ChatTemplate("")
	persona := data.Persona{Age: 34, Sex: "Female", Education: "Post grad study/professional degree", Income: "75-99K", PartyID: "Moderate Democrat", Ideology: "Moderate"}
	row := data.Example{
		Instruction: data.DefaultInstruction,
		Input: data.BuildPrompt(persona.Render(), "You read a proposal to expand public transit and then were asked: "+
			"“How much do you support it?” Only return an integer from 1 to 5, where 1 means strongly oppose and 5 means strongly support."),
	}
	p := predict.New(m, nil, &data.Encoder{Tok: tok, Template: tmpl}, predict.Sampling{})
	res, err := p.Rows([]data.Example{row}, nil)
	if err != nil {
		log.Fatal(err)
	}
	for i, v := range res[0].Options.Values {
		fmt.Printf("%v: %.2f\n", v, res[0].Probs[i])
	}
	// Output:
	// 1: 0.84
	// 2: 0.06
	// 3: 0.05
	// 4: 0.05
	// 5: 0.01
}
