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
