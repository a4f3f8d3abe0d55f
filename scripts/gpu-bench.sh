#!/usr/bin/env bash
# Issue 17's GPU run in two halves.
#
#   scripts/gpu-bench.sh build   here (no GPU): builds benches/gpu.rs with
#                                --features cuda (../shared/notes/cuda.md) and
#                                stages it, the PyTorch baseline and the golden
#                                fixtures in .gpu/ (git-ignored)
#   scripts/gpu-bench.sh run     on the device machine, in one call:
#                                run(command="bash scripts/gpu-bench.sh run",
#                                    carry=[".gpu"], timeout_s=590)
#                                results land in $OUT/gpu-bench.jsonl
#
# Each case runs in its own process while nvidia-smi samples the GPU's used
# memory every 100 ms: its peak is the case's peak (candle has no allocator
# statistics; PyTorch's own max_memory_allocated is printed beside it).
# `STEPS=8 scripts/gpu-bench.sh run` shortens the text-to-image cases.
set -euo pipefail
cd "$(dirname "$0")/.."

build() {
    bash ../shared/tools/setup-cuda13.sh >&2
    local root=${CUDA_ROOT_LINK:-${XDG_CACHE_HOME:-$HOME/.cache}/cuda13}
    export CUDA_HOME=$root NVCC=$root/bin/nvcc PATH=$root/bin:$PATH
    export CUDARC_CUDA_VERSION=13000 CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90} CUDAFORGE_THREADS=2
    export LIBRARY_PATH=$root/lib:$root/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}
    export CARGO_TARGET_DIR=target-cuda
    local exe
    exe=$(cargo bench --features cuda --bench gpu --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu"][-1])')
    rm -rf .gpu && mkdir -p .gpu
    cp "$exe" .gpu/gpu-bench && strip .gpu/gpu-bench || true
    cp benches/gpu_torch.py .gpu/
    cp -r ../shared/fixtures/tiny-dimoo .gpu/fixtures
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
    du -sh .gpu
}

# Runs "$@" while sampling the GPU's used memory; prints the JSON line of the
# case with "gpu_peak_mib" added.
measured() {
    local log
    log=$(mktemp)
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$log" 2>/dev/null &
    local smi=$!
    local line rc=0
    line=$("$@" 2> >(tail -n 5 >&2)) || rc=$?
    kill $smi 2>/dev/null || true
    wait $smi 2>/dev/null || true
    local peak
    peak=$(sort -n "$log" | tail -1)
    rm -f "$log"
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
        echo "{\"failed\": \"$*\", \"rc\": $rc}"
    else
        echo "${line%\}}, \"gpu_peak_mib\": ${peak:-0}}"
    fi
}

run() {
    local out=${OUT:-/tmp/gpu-bench}
    mkdir -p "$out"
    local torch_lib
    torch_lib=$(python3 -c 'import os, nvidia; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))' 2>/dev/null || true)
    export LD_LIBRARY_PATH=${torch_lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    local res=$out/gpu-bench.jsonl steps=${STEPS:-64}
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
    ldd .gpu/gpu-bench | grep -E "cuda|cublas|curand|not found" | tee -a "$out/gpu.txt" || true
    : > "$res"
    measured .gpu/gpu-bench golden --fixtures .gpu/fixtures | tee -a "$res"
    for case in forward t2i t2i-cache answer answer-cache; do
        measured .gpu/gpu-bench "$case" --steps "$steps" | tee -a "$res"
        # the baseline has no caches: one run per shape, beside ours without
        case $case in *-cache) ;; *) measured python3 .gpu/gpu_torch.py "$case" --steps "$steps" | tee -a "$res" ;; esac
    done 2>&1 | tee "$out/log.txt"
}

case "${1:-}" in
    build) build ;;
    run) run ;;
    *) echo "usage: $0 build|run" >&2; exit 2 ;;
esac
