#!/usr/bin/env bash
# Cross-checks checkpoints written by `gotrain init-model` against the PyTorch reference:
# builds gotrain, writes random tiny/small checkpoints, scores the same random token ids with
# `gotrain score` and `reference.py score` (float64), and prints the worst |Δ logprob|.
#
#   scripts/reference/crosscheck_go.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
go build -o "$work/gotrain" ./cmd/gotrain
for spec in "qwen2 tiny bf16" "qwen2 small f32" "qwen3 tiny bf16" "qwen3 small f32" "llama tiny f32" "llama small bf16"; do
	set -- $spec
	dir="$work/$1-$2-$3"
	io="$dir.io" # outside the checkpoint: gotrain refuses outputs inside an input
	mkdir -p "$io"
	"$work/gotrain" init-model --out "$dir" --arch "$1" --size "$2" --dtype "$3" --seed 7 >/dev/null
	/usr/bin/python3 - "$dir" >"$io/in.jsonl" <<'PY'
import json, random, sys
cfg = json.load(open(sys.argv[1] + "/config.json"))
rnd = random.Random(11)
for pl, cl in [(1, 1), (5, 9), (33, 7), (70, 20)]:
    print(json.dumps({"prompt_ids": [rnd.randrange(cfg["vocab_size"]) for _ in range(pl)],
                      "completion_ids": [rnd.randrange(cfg["vocab_size"]) for _ in range(cl)]}))
PY
	"$work/gotrain" score --base "$dir" --data "$io/in.jsonl" --out "$io/go.jsonl"
	/usr/bin/python3 scripts/reference/reference.py score --model "$dir" --data "$io/in.jsonl" --out "$io/ref.jsonl"
	/usr/bin/python3 - "$io" "$spec" <<'PY'
import json, sys
d = sys.argv[1]
go = [json.loads(l) for l in open(d + "/go.jsonl")]
ref = [json.loads(l) for l in open(d + "/ref.jsonl")]
assert len(go) == len(ref), "line counts differ"
worst = max(abs(a - b) for g, r in zip(go, ref) for a, b in zip(g["logprobs"], r["logprobs"]))
print(json.dumps({"checkpoint": sys.argv[2], "lines": len(go), "max_abs_logprob_go_vs_reference": worst}))
PY
done
