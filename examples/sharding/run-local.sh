#!/usr/bin/env bash
# Runs `gotrain predict --shard i/n` for every shard as separate processes — what a Slurm job array or a
# Kubernetes Indexed Job does across machines — then merges the shards with `gotrain eval`.
#   examples/sharding/run-local.sh BASE ADAPTER ROWS.jsonl N OUTDIR [TRAIN.jsonl]
set -euo pipefail
base=$1 adapter=$2 rows=$3 n=$4 out=$5 train=${6:-}
gotrain=${GOTRAIN:-gotrain}
mkdir -p "$out"
for ((i = 0; i < n; i++)); do
	SHARD_INDEX=$i SHARD_COUNT=$n "$gotrain" predict --base "$base" --adapter "$adapter" --data "$rows" \
		--shard "$i/$n" --out "$out/pred-$i-of-$n.jsonl" &
done
wait
files=$(ls "$out"/pred-*-of-"$n".jsonl | paste -sd, -)
"$gotrain" eval --pred "$files" ${train:+--train "$train"} --report "$out/report"
