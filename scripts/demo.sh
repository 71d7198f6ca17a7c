#!/usr/bin/env bash
# The README's first command (make demo): create a tiny random Qwen2 model, finetune
# it with LoRA on the bundled SocSci210 sample's training studies, predict the
# held-out studies with and without the adapter, and print the paper's metrics
# against the uniform and training-prior baselines.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./bin/gotrain
out=${DEMO_OUT:-demo-out}
steps=${DEMO_STEPS:-60}
rm -rf "$out"; mkdir -p "$out"
$bin init-model --arch qwen2 --size tiny --out "$out/model"
$bin split --data sample --by study --eval-frac 0.2 --seed 1 --train "$out/train.jsonl" --eval "$out/heldout.jsonl"
$bin sft --base "$out/model" --data "$out/train.jsonl" --out "$out/adapter" \
	--max-steps "$steps" --batch-size 8 --lr 2e-3 --lora-r 16 --lora-alpha 32 --save-steps 20
for which in base finetuned; do
	adapter=(); [ "$which" = finetuned ] && adapter=(--adapter "$out/adapter")
	$bin predict --base "$out/model" "${adapter[@]}" --data "$out/heldout.jsonl" --out "$out/pred-$which.jsonl"
done
for which in base finetuned; do
	echo; echo "== held-out studies, $which model =="
	$bin eval --pred "$out/pred-$which.jsonl" --train "$out/train.jsonl" --demographic Gender --report "$out/report-$which" | sed -n '1,7p'
done
echo; echo "reports (open index.html in a browser; also metrics.json, table.txt, SVGs): $out/report-*/; loss curve: $out/adapter/loss.svg"
