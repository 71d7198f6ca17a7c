package train_test

import (
	"context"
	"fmt"
	"log"

	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/train"
)

// One supervised finetuning step with LoRA on a tiny model: the loss of the
// completion tokens before and after, and the metrics the step reports.
func Example_sftStep() {
	m, err := model.Load("../model/testdata/tiny-qwen2-bf16")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ad, err := m.NewAdapter(model.AdapterConfig{R: 8, LoraAlpha: 16, TargetModules: []string{"q", "k", "v", "o", "gate", "up", "down"}}, 1)
	if err != nil {
		log.Fatal(err)
	}
	// prompt tokens 5 17 99, completion 42 43 (the mask marks what is learned)
	ex := train.Example{Tokens: []int{5, 17, 99, 42, 43}, Mask: []bool{false, false, false, true, true}}
	cfg := train.DefaultConfig()
	cfg.LR, cfg.MaxSteps, cfg.Dropout = 0.05, 1, 0
	before, _ := train.MeanLoss(m, ad, []train.Example{ex})
	tr, err := train.New(m, ad, cfg, []train.Example{ex}, nil)
	if err != nil {
		log.Fatal(err)
	}
	err = tr.Run(context.Background(), func(s train.StepInfo) {
		fmt.Printf("step %d/%d: loss %.2f, lr %.2f\n", s.Step, s.TotalSteps, s.Loss, s.LR)
	})
	if err != nil {
		log.Fatal(err)
	}
	after, _ := train.MeanLoss(m, ad, []train.Example{ex})
	fmt.Printf("loss %.2f → %.2f\n", before, after)
	// Output:
	// step 1/1: loss 7.54, lr 0.05
	// loss 7.54 → 1.48
}
