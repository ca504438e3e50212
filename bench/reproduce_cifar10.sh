#!/usr/bin/env bash
# The CIFAR-10 reproduction of docs/RESULTS.md (Tables I, III, IV and the λ sweep) with one ResNet-20,
# each command timed, the reports printed, and results-only copies written under assets/results/.
#
#   bash bench/reproduce_cifar10.sh                          # the shipped ResNet-20 (assets/resnet20-cifar10.pt)
#   bash bench/reproduce_cifar10.sh path/to/resnet20.pt      # another checkpoint of ours
#
# Environment:
#   LAUNCH="torchrun --nproc-per-node 2"   split every stage over 2 processes (torch.distributed, gloo). On a
#                                          2-core CPU that is one thread each, ~1.2x the throughput of one
#                                          process with two threads (map steps, measured).
#   SWEEP_LIMIT=N                          the λ = 0.1 and 0.02 runs on the first N test images (default: all;
#                                          0: skip them, the main run only)
#   OUT=DIR                                cache root (default: cache)
#   DEVICE=cpu|cuda|auto                   (default: auto)
#   EXTRA="..."                            more `precompute run` options for every run (a smoke test:
#                                          EXTRA="--limit 8 --train-limit 40 --attack-steps 2 --min-steps 2
#                                          --max-steps 4 --class-min-steps 2 --class-max-steps 3" SHIP=0 OUT=/tmp/x)
#   SHIP=0                                 do not write the results-only copies under assets/results/
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKPOINT=${1:-assets/resnet20-cifar10.pt}
OUT=${OUT:-cache}
LAUNCH=${LAUNCH:-python}
DEVICE=${DEVICE:-auto}
SWEEP=()
if [ -n "${SWEEP_LIMIT:-}" ] && [ "$SWEEP_LIMIT" != 0 ]; then SWEEP=(--limit "$SWEEP_LIMIT"); fi
read -r -a MORE <<< "${EXTRA:-}"

# precompute ARGS...: one timed `precompute` command; its last output line (the experiment directory) in $DIR
precompute() {
    local start=$SECONDS log
    log=$(mktemp)
    echo "+ $LAUNCH -m precompute $*"
    # shellcheck disable=SC2086  # LAUNCH is a command with arguments
    $LAUNCH -m precompute "$@" | tee "$log"
    DIR=$(tail -n 1 "$log")
    rm -f "$log"
    echo "  took $((SECONDS - start)) s"
}

# ship DIR: a results-only copy (numbers, per-pair cosines, null distributions; no images, no maps)
ship() {
    [ "${SHIP:-1}" = 0 ] && return 0
    local target="assets/results/$(basename "$1")"
    rm -rf "$target" && cp -r "$1" "$target"
    python -m precompute prune "$target" --drop images maps train
}

echo "== Tables I, III and IV (λ = 0.5, PGD 1, 3, 8/255, class maps on train-4000)"
precompute run --preset cifar10-paper --checkpoint "$CHECKPOINT" --device "$DEVICE" --out "$OUT" "${MORE[@]}"
python -m precompute report "$DIR"
ship "$DIR"

if [ "${SWEEP_LIMIT:-}" = 0 ]; then exit 0; fi
for lam in 0.1 0.02; do
    echo "== Table I at λ = $lam"
    precompute run --preset cifar10-paper --checkpoint "$CHECKPOINT" --device "$DEVICE" --out "$OUT" \
        --lam "$lam" --eps 8 --train-data none "${SWEEP[@]}" "${MORE[@]}"
    python -m precompute report "$DIR"
    ship "$DIR"
done
