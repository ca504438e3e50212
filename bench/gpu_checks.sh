#!/usr/bin/env bash
# The GPU figures of docs/BENCHMARKS.md in one script: run it on a machine with a CUDA GPU.
#
#   bash bench/gpu_checks.sh              # every step, in the order below (about 10-15 min on one H100, estimated)
#   bash bench/gpu_checks.sh maps tests   # only these steps
#
# Steps:
#   info      the GPU, torch and CUDA versions (every figure below is read against them)
#   tests     the tests that use CUDA when there is one: bf16 maps vs float32 (prints the per-image cosines),
#             CUDA-graph training vs eager training
#   maps      bench/bench_maps.py: the batched map trainer on 256 real images (all 256 slots on the GPU) vs the
#             one-at-a-time loop on 32 of them (target: >= 50x on a GPU)
#   step      bench/bench_step.py: one map step at batch 256, eager / compiled (CUDA graphs) x float32 / bf16, as
#             image-steps/s and as a share of the float32 matmul ceiling
#   bases     bench/bench_bases.py: one map step per basis and layer at batch 256, image-steps/s against Fourier
#             amplitude maps at the input
#   idcor     bench/bench_idcor.py: IdCor with 100 permutations on 1000 pairs, reused vs recomputed distances
#   pipeline  bench/bench_pipeline.py: the cifar10-paper pipeline on the 1000 test images on the GPU, per stage,
#             against the published one-image-at-a-time procedure on the first 8
#   precision bench/bench_precision.py: per-image maps under real TF32 convolutions and under --bf16 against
#             float32 (TF32 off), beside float32 under another operation order; the CPU could only emulate TF32
#
# Environment:
#   FMAPS_SHARED=DIR   the shared data and models (default: ../shared beside the repository): DIR/data/cifar10/
#                      test-1000 and DIR/models/resnet20-akamaster.th
#   LOGS=DIR           where each step's output is kept as STEP.log (default: artifacts/gpu)
#   DEVICE=cuda        the device the benchmarks use (cpu to try the script on a machine without a GPU)
#   N_MAPS=256 N_SINGLE_MAPS=32 N_PIPELINE=1000 N_SINGLE_PIPELINE=8 N_PRECISION=96    the sizes (smaller to try
#                      the script)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${FMAPS_SHARED:-../shared}
export FMAPS_SHARED=$SHARED
LOGS=${LOGS:-artifacts/gpu}
DEVICE=${DEVICE:-cuda}
STEPS=("$@")
if [ ${#STEPS[@]} = 0 ]; then STEPS=(info tests maps step bases idcor pipeline precision); fi
for dir in "$SHARED/data/cifar10/test-1000" "$SHARED/models"; do
    [ -d "$dir" ] || { echo "gpu_checks: expected $dir (set FMAPS_SHARED to the folder holding data/ and models/)" >&2; exit 2; }
done
mkdir -p "$LOGS"

# step NAME COMMAND...: run one step, its output shown and kept in $LOGS/NAME.log, timed
step() {
    local name=$1 start=$SECONDS
    shift
    echo "== $name: $*"
    "$@" 2>&1 | tee "$LOGS/$name.log"
    echo "   $name took $((SECONDS - start)) s"
}

for name in "${STEPS[@]}"; do
    case $name in
        info) step info python -c 'import torch
print("torch", torch.__version__, "CUDA", torch.version.cuda, "available:", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(p.name, f"{p.total_memory / 2**30:.0f} GiB", p.multi_processor_count, "SMs")' ;;
        tests) step tests python -m pytest -q -s tests/test_bf16.py \
            tests/test_training.py::test_cuda_graph_training_matches_eager_training ;;
        maps) step maps python -m bench.bench_maps --device "$DEVICE" --n "${N_MAPS:-256}" \
            --n-single "${N_SINGLE_MAPS:-32}" --batch-size "${N_MAPS:-256}" ;;
        step) step step python -m bench.bench_step --device "$DEVICE" --batch "${N_MAPS:-256}" ;;
        bases) step bases python -m bench.bench_bases --device "$DEVICE" --batch "${N_MAPS:-256}" ;;
        idcor) step idcor python -m bench.bench_idcor --data "$SHARED/data/cifar10/test-1000" ;;
        pipeline) step pipeline python -m bench.bench_pipeline --device "$DEVICE" --n "${N_PIPELINE:-1000}" \
            --n-single "${N_SINGLE_PIPELINE:-8}" --data "$SHARED/data/cifar10/test-1000" ;;
        precision) step precision python -m bench.bench_precision --device "$DEVICE" --n "${N_PRECISION:-96}" ;;
        *) echo "gpu_checks: unknown step '$name' (expected info, tests, maps, step, bases, idcor, pipeline or precision)" >&2
           exit 2 ;;
    esac
done
echo "logs in $LOGS/"
