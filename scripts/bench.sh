#!/usr/bin/env bash
# make bench: every speed benchmark beside its reference, measured in the same run, as JSON lines in
# bench-out/results.jsonl (and on stdout). The PyTorch references need Debian's PyTorch
# (apt-get install python3-torch python3-numpy libopenblas0-pthread) and are skipped without it;
# the tokenizer reference needs node and scripts/tokenizer's npm install and /work/shared.
# Set QUICK=1 for small shapes. Run on a quiet machine: ratios, not absolute numbers, are the point.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=./bin/gotrain
out=bench-out; mkdir -p "$out"; res="$out/results.jsonl"; : > "$res"
py=/usr/bin/python3
have_torch() { $py -c 'import torch' 2>/dev/null; }
run() { echo "+ $*" >&2; "$@" | tee -a "$res"; }
size=0.5b; [ "${QUICK:-0}" = 1 ] && size=small

run $bin bench peak
run $bin bench bandwidth
# GEMM: Qwen2.5-0.5B (hidden 896, intermediate 4864, vocab 151936) and 14B (5120, 13824) shapes, M = 512 tokens
for shape in "896 896" "4864 896" "896 4864" "151936 896" "5120 5120" "13824 5120" "5120 13824"; do
	set -- $shape
	for w in f32 bf16; do
		run $bin bench gemm --m 512 --n $1 --k $2 --weights $w
		run $bin bench gemm --m 128 --n $1 --k $2 --weights $w
		run $bin bench gemm --m 128 --n $1 --k $2 --weights $w --packed
	done
	run $bin bench gemm --m 512 --n $1 --k $2 --weights bf16 --compute bf16
	run $bin bench gemm --m 1 --n $1 --k $2 --weights bf16
	have_torch && run $py scripts/bench_gemm_torch.py --m 512 --n $1 --k $2
	have_torch && run $py scripts/bench_gemm_torch.py --m 128 --n $1 --k $2
done
run $bin bench prefill --size $size --tokens 512
run $bin bench prefill --size $size --tokens 512 --pack
run $bin bench prefill --size $size --tokens 512 --pack --compute bf16
have_torch && run $py scripts/reference/bench_prefill.py --tokens 512 --dtype float32
run $bin bench decode --size $size --tokens 512 --steps 32
# the LoRA step in both compute modes, alternated (bf16 vs f32 is the ratio that counts)
for c in f32 bf16 f32 bf16; do run $bin bench train --size $size --batch 8 --tokens 256 --reps 1 --compute $c; done
# an nf4 base: bf16 compute dequantizes into bf16 panels, f32 into float32 ones
for c in f32 bf16 f32 bf16; do run $bin bench train --size $size --batch 8 --tokens 256 --reps 1 --quantize nf4 --compute $c; done
# the pairs GEMM on the training shapes and nf4 panels on the 14B shapes, GFLOP per CPU second
go test -run - -bench 'TrainGEMM|QuantCompute|Kernel$' -benchtime 5x ./kernels/ | grep Benchmark | tee "$out/kernels.txt"
have_torch && [ "${QUICK:-0}" != 1 ] && run $py scripts/reference/bench_lora_step.py --batch 8 --seq 256 --rank 16 --steps 2
run $bin bench predict --size $size --rows ${ROWS:-100}
have_torch && run $py scripts/reference/bench_predict.py --rows 4 --prompt 250 --options 5 --completion 4
run $bin bench dpo --size $size --tokens 256 --batch 4
go test -run XXX -bench 'Encode' -benchtime 2s -cpu 1 ./tokenize/ | grep Benchmark | tee -a "$out/tokenize.txt"
if [ -d scripts/tokenizer/node_modules ] && [ -d ../shared ]; then
	(cd scripts/tokenizer && taskset -c 0 node bench.mjs ../../../shared ../../tokenize/testdata) | tee -a "$out/tokenize.txt"
fi
echo "results in $res" >&2
