#!/usr/bin/env bash
# The GPU bench (issues 17 and 29) in two halves.
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
# `STEPS=8 scripts/gpu-bench.sh run` shortens the text-to-image cases;
# `FULL=1` adds the uncached 256-token answers (ours and PyTorch's, ~80 s).
# `bash scripts/gpu-bench.sh dry` runs every case of ours on this CPU with the
# mid-size config (no PyTorch): a check that nothing panics before a device call.
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
    exe=$(cargo bench --features cuda --bench gpu --no-run --message-format=json \
        | python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu"][-1])')
    rm -rf .gpu && mkdir -p .gpu
    cp "$exe" .gpu/gpu-bench && strip .gpu/gpu-bench || true
    # the device machine takes 64 MiB with the tree: carry it gzipped
    gzip -9 -f .gpu/gpu-bench
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

# One case in its own process, under a time limit so that one stuck case
# cannot spend the whole device call.
case_() {
    measured timeout "${CASE_LIMIT:-150}" "$@" | tee -a "$res"
}

run() {
    local out=${OUT:-/tmp/gpu-bench}
    mkdir -p "$out"
    local torch_lib
    torch_lib=$(python3 -c 'import os, nvidia; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))' 2>/dev/null || true)
    export LD_LIBRARY_PATH=${torch_lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    [ -f .gpu/gpu-bench ] || gunzip -k .gpu/gpu-bench.gz
    chmod +x .gpu/gpu-bench
    res=$out/gpu-bench.jsonl
    local steps=${STEPS:-64} b=.gpu/gpu-bench t=.gpu/gpu_torch.py
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
    ldd $b | grep -E "cuda|cublas|curand|not found" | tee -a "$out/gpu.txt" || true
    : > "$res"
    {
        # most important first: a call cut short keeps what it measured
        case_ $b golden --fixtures .gpu/fixtures
        case_ $b attention
        case_ $b forward
        case_ python3 $t forward
        case_ $b t2i --side 32 --steps 16
        case_ $b t2i-cache --side 32 --steps 16
        case_ python3 $t t2i --side 32 --steps 16
        case_ $b t2i --steps "$steps"
        case_ $b t2i-cache --steps "$steps" --decode
        case_ python3 $t t2i --steps "$steps"
        case_ $b answer-cache
        case_ $b projections
        case_ $b vq-decode
        case_ $b vq-encode
        case_ $b quant
        case_ $b agreement --dir /tmp/agreement
        case_ python3 $t agreement --dir /tmp/agreement
        rm -rf /tmp/agreement
        if [ -n "${FULL:-}" ]; then
            case_ $b answer
            case_ python3 $t answer
        fi
    } 2>&1 | tee "$out/log.txt"
}

# Every case of ours on the CPU, mid-size config, from a normal build.
dry() {
    local exe
    exe=$(cargo bench --bench gpu --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu"][-1])')
    local c="--device cpu --config mid"
    "$exe" golden --fixtures ../shared/fixtures/tiny-dimoo --device cpu
    for case in attention forward projections "t2i --side 16 --steps 4" "t2i-cache --side 16 --steps 4 --decode" \
        "answer-cache" vq-decode vq-encode quant "agreement --dir /tmp/unmask-agreement"; do
        # shellcheck disable=SC2086
        "$exe" $case $c || { echo "dry run: $case failed" >&2; return 1; }
    done
    rm -rf /tmp/unmask-agreement
}

case "${1:-}" in
    build) build ;;
    run) run ;;
    dry) dry ;;
    *) echo "usage: $0 build|run|dry" >&2; exit 2 ;;
esac
