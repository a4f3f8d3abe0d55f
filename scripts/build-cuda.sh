#!/usr/bin/env bash
# Builds `unmask` with the `cuda` feature on a machine without a GPU, using
# NVIDIA's CUDA 13.0 wheels from PyPI (../shared/notes/cuda.md). The binary
# lands in target-cuda/release/unmask, to be carried to a GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ../shared/tools/setup-cuda13.sh >&2
CUDA_ROOT=${CUDA_ROOT_LINK:-${XDG_CACHE_HOME:-$HOME/.cache}/cuda13}
export CUDA_HOME=$CUDA_ROOT NVCC=$CUDA_ROOT/bin/nvcc PATH=$CUDA_ROOT/bin:$PATH
export CUDARC_CUDA_VERSION=13000 CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90} CUDAFORGE_THREADS=2
export LIBRARY_PATH=$CUDA_ROOT/lib:$CUDA_ROOT/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}
export CARGO_TARGET_DIR=target-cuda
cargo build --release --features cuda --bin unmask
ls -la target-cuda/release/unmask
