// Package train finetunes LoRA adapters: the optimisers (AdamW, SGD), the
// learning-rate schedules, gradient clipping and accumulation, the
// deterministic data order, checkpoints that resume bit for bit, and the loop
// that drives model.LossAndGrad.
//
// Data flow: the caller tokenizes its records into Examples (token ids and a
// per-token loss mask), a Trainer packs them into micro-batches, the model
// computes the loss and the LoRA gradients, and the optimiser updates the
// adapter in place; checkpoints and metrics.jsonl go to the output directory.
package train
