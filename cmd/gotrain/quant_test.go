package main

import (
	"flag"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/model"
)

func TestCheckMemory(t *testing.T) {
	c, err := model.ConfigFor(model.Qwen2, "0.5b")
	if err != nil {
		t.Fatal(err)
	}
	in := model.PlanInput{WeightDType: "BF16", LoRARank: 16, Optimizer: "adamw", BatchTokens: 4096}
	p := model.PlanMemory(c, in)
	if err := checkMemoryAvail(p, p.Total); err != nil {
		t.Fatalf("fits exactly, refused: %v", err)
	}
	if err := checkMemoryAvail(p, -1); err != nil {
		t.Fatalf("unknown availability refused: %v", err)
	}
	err = checkMemoryAvail(p, p.Total/2)
	if err == nil {
		t.Fatal("over budget accepted")
	}
	for _, want := range []string{"--quantize nf4", "--batch-size", "total"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%v", want, err)
		}
	}
	in.Quantize = "nf4"
	err = checkMemoryAvail(model.PlanMemory(c, in), 1)
	if err == nil || strings.Contains(err.Error(), "--quantize") {
		t.Errorf("nf4 plan should not suggest --quantize: %v", err)
	}
}

// TestCheckMemoryFull: a full-finetuning run that does not fit is refused
// with the plan's master weights, gradients and moments, and the suggestions
// that apply (8-bit moments, LoRA), not --quantize.
func TestCheckMemoryFull(t *testing.T) {
	c, _ := model.ConfigFor(model.Qwen2, "0.5b")
	p := model.PlanMemory(c, model.PlanInput{WeightDType: "BF16", Full: true, Optimizer: "adamw", BatchTokens: 2048})
	err := checkMemoryAvail(p, 4<<30)
	if err == nil {
		t.Fatal("a 9 GiB full finetuning run accepted in 4 GiB")
	}
	for _, want := range []string{"master weights", "AdamW moments", "--optim adamw8bit", "LoRA instead of --full", "--batch-size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "--quantize") {
		t.Errorf("full finetuning refusal suggests --quantize:\n%v", err)
	}
}

func TestQuantizeFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	q := addQuantizeFlag(fs)
	if err := fs.Parse([]string{"--quantize", "nf4"}); err != nil || *q != "nf4" {
		t.Fatalf("parse: %v %q", err, *q)
	}
}

func TestPlanRun(t *testing.T) {
	p, err := planRun("../../model/testdata/tiny-qwen2-bf16", "nf4", 8, "q, v", "adamw", 256, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Total <= 0 || p.Input.Quantize != "nf4" || len(p.Input.LoRATargets) != 2 {
		t.Fatalf("plan %+v", p)
	}
	if _, err := planRun(t.TempDir(), "", 0, "", "", 0, 0); err == nil {
		t.Fatal("missing config.json accepted")
	}
}
