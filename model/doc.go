// Package model runs and trains Qwen2/Qwen2.5, Qwen3, LLaMA 2/3 and Mistral decoder-only
// transformers from Hugging Face checkpoints on the CPU.
//
// Load reads config.json and the safetensors weights, memory-mapped and kept
// in their stored dtype (BF16 stays BF16). The BF16 matrices every token
// streams (linear layers, LM head) are then copied out of the file mapping
// into one anonymous mapping advised for huge pages, file pages released as
// they go: fewer page walks when decoding. A Model is immutable and safe for
// concurrent use: each call keeps its state in its own KVCache, Predictor or
// buffers.
//
// Data flow: token ids (package tokenize) go into a Batch — one or several
// sequences packed into one stream, each token with its rotary position and
// the cache rows it attends to — and Forward appends them to a KVCache and
// returns final hidden states; Logits applies the LM head. Score gives
// teacher-forced log-probabilities, Predictor scores alternative
// continuations of a prompt on one shared KV cache (answer options), and
// Generate samples. For training, a TrainBatch adds next-token targets and
// loss weights, and LossAndGrad (or Backprop with any Objective over the
// targets' log-probabilities, as DPO needs) returns the loss and adds the
// gradients of the LoRA weights of an Adapter; layers are recomputed in the
// backward pass (activation checkpointing). Adapters are PEFT LoRA
// directories (LoadAdapter, NewAdapter, Save, Merge).
//
// Errors: a config value the engine does not implement is an
// *UnsupportedError (errors.Is(err, ErrUnsupported)); a tensor of the wrong
// shape wraps ErrShape.
package model
