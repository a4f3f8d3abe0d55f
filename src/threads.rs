//! The CPU thread count, decided once per process.
//!
//! Why: candle asks for its thread count on every op (each matmul,
//! convolution, element-wise map), and unless `RAYON_NUM_THREADS` is set it
//! counts physical cores by reading and parsing `/proc/cpuinfo` each time.
//! On the embedded model's VQ-VAE training steps (many small convolutions)
//! that was ~8% of the samples in `perf` (60 joint VQ-VAE steps: 43.0 s
//! without the variable, 39.3 s and 42.0 s in two runs with it; same build).

/// Sets `RAYON_NUM_THREADS` to the count candle would pick, unless the user
/// set it. Same count, so the same results; it is just read once. Call
/// first thing in `main`, before any other thread exists.
pub fn decide_once() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = candle_core::utils::get_num_threads();
        // Only sound while the process has one thread: the caller's promise.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}

/// Sets candle's CPU thread count to `n` for this process, whatever the
/// environment says (`RAYON_NUM_THREADS` for gemm and rayon,
/// `CANDLE_NUM_THREADS` for its element-wise pool). Call first thing in
/// `main`, before any other thread exists.
///
/// Why the trainer wants this: on its small tensors one thread per step is
/// faster than two (the embedded transformer's step: 0.17-0.18 s on one
/// thread, 0.22 s on two; a VQ-VAE step: 0.27 s against 0.26 s); the likely
/// cause, not profiled: candle's element-wise pool worker spins after each op
/// while gemm runs on the rayon pool. So `unmask-train`
/// gives each of its two independent halves one thread and runs them at once.
pub fn set(n: usize) {
    let n = n.max(1).to_string();
    // Only sound while the process has one thread: the caller's promise.
    std::env::set_var("RAYON_NUM_THREADS", &n);
    std::env::set_var("CANDLE_NUM_THREADS", &n);
}
