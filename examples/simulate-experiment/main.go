// Command simulate-experiment shows gotrain as a library: it loads a model,
// draws personas from a participants.json pool, predicts each persona's
// answer distribution in two framings of a question, and prints the effect.
//
//	go run ./examples/simulate-experiment --base MODEL_DIR [--adapter DIR] [--personas participants.json]
package main

import (
	"flag"
	"fmt"
	"log"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/predict"
	"github.com/gotrain/gotrain/tokenize"
)

const question = "“How much do you support the proposal?” Only return an integer from 1 to 7, where 1 means strongly oppose and 7 means strongly support."

var framings = [2]string{
	"You read that a new parking fee would raise $40 million a year for buses",
	"You read that without a new parking fee the city would lose $40 million a year for buses",
}

func main() {
	base := flag.String("base", "", "model directory")
	adapter := flag.String("adapter", "", "LoRA adapter directory (optional)")
	pool := flag.String("personas", "", "participants.json (default: the bundled sample)")
	n := flag.Int("n", 20, "personas to draw")
	flag.Parse()
	if err := run(*base, *adapter, *pool, *n); err != nil {
		log.Fatal(err)
	}
}

func run(base, adapterDir, pool string, n int) error {
	m, err := model.Load(base)
	if err != nil {
		return err
	}
	defer m.Close()
	var ad *model.Adapter // nil: the base model alone
	if adapterDir != "" {
		if ad, err = m.LoadAdapter(adapterDir); err != nil {
			return err
		}
	}
	tok, err := tokenize.Load(base)
	if err != nil {
		return err
	}
	tmpl, err := tok.ChatTemplate("")
	if err != nil {
		return err
	}
	personas, err := data.SamplePersonas()
	if pool != "" {
		personas, err = data.ReadPersonas(pool)
	}
	if err != nil {
		return err
	}
	personas = predict.DrawPersonas(personas, n, 1)
	p := predict.New(m, ad, &data.Encoder{Tok: tok, Template: tmpl}, predict.Sampling{})
	var means [2]float64
	for c, framing := range framings {
		rows := make([]data.Example, len(personas))
		for i := range personas {
			scenario := framing + " and then were asked: " + question
			rows[i] = data.Example{Instruction: data.DefaultInstruction, Input: data.BuildPrompt(personas[i].Render(), scenario)}
		}
		res, err := p.Rows(rows, nil)
		if err != nil {
			return err
		}
		for _, r := range res {
			means[c] += data.Mean(r.Options, r.Probs) / float64(len(res))
		}
		fmt.Printf("framing %d: mean predicted support %.3f over %d personas\n", c+1, means[c], len(res))
	}
	fmt.Printf("effect of the loss framing: %+.3f points on the 1–7 scale\n", means[1]-means[0])
	return nil
}
