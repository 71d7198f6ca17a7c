package model_test

import (
	"fmt"
	"log"

	"github.com/gotrain/gotrain/model"
)

// Scoring a completion: the teacher-forced log-probability of each
// completion token given the prompt, with a LoRA adapter applied.
func ExampleModel_Score() {
	m, err := model.Load("testdata/tiny-llama-f32")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ad, err := m.LoadAdapter("testdata/tiny-llama-f32/adapter")
	if err != nil {
		log.Fatal(err)
	}
	prompt, completion := []int{12, 7, 301, 44}, []int{9, 250}
	lps, err := m.Score([]model.Sequence{{Tokens: append(prompt, completion...), From: len(prompt)}}, ad)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d log-probabilities, sum %.2f\n", len(lps[0]), lps[0][0]+lps[0][1])
	// Output: 2 log-probabilities, sum -15.19
}
