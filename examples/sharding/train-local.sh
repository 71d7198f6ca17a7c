#!/usr/bin/env bash
# Runs a data-parallel `gotrain sft` (or dpo) as N processes on this machine, with the environment
# torchrun gives its workers (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT);
# the processes share the cores. The adapter equals one process with --grad-accum × N.
#   examples/sharding/train-local.sh N sft --base DIR --data train.jsonl --out runs/x [flags]
set -euo pipefail
n=$1
shift
gotrain=${GOTRAIN:-gotrain}
port=${MASTER_PORT:-$((29500 + RANDOM % 1000))}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for ((r = 0; r < n; r++)); do
	RANK=$r WORLD_SIZE=$n LOCAL_RANK=$r LOCAL_WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
		"$gotrain" "$@" &
	pids+=($!)
done
# the first rank to fail makes the others fail within seconds; report the worst exit code
code=0
for pid in "${pids[@]}"; do
	wait "$pid" || code=$?
done
trap - EXIT
exit "$code"
