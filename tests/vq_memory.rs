//! The release's VQ-VAE (the 8B preset's config, random weights, f32) in
//! bounded memory (issue 29, item 5): each run happens in a child process
//! (this test binary again) under an address-space cap, and reports its peak
//! resident memory and time.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Instant;

use candle_core::{DType, Device};
use unmask::model::{CodeGrid, Rgb, VqModel};

/// Set in the child: "decode SIDE" or "encode SIDE" (SIDE in pixels).
const CHILD: &str = "UNMASK_VQ_MEMORY_CHILD";

/// In the child: the run, then one line `ms=.. hwm_kib=..` on stdout.
fn child(spec: &str) {
    unmask::alloc::keep_freed_buffers();
    let (op, side) = spec.split_once(' ').expect("op side");
    let px: usize = side.parse().expect("side");
    let (_, cfg, _) = unmask::plan::lumina_dimoo_8b();
    let vb = unmask::model::random::random_vq_weights(&cfg, DType::F32, &Device::Cpu).expect("weights");
    let mut vq = VqModel::load(&cfg, vb).expect("VQ-VAE");
    if std::env::var_os("UNMASK_VQ_WHOLE").is_some() {
        vq.set_band_bytes(None); // the whole-map code, for comparison
    }
    if let Some(b) = std::env::var("UNMASK_VQ_BAND").ok().and_then(|v| v.parse().ok()) {
        vq.set_band_bytes(Some(b));
    }
    let n = px / vq.factor();
    let (t, cpu0) = (Instant::now(), cpu_ms());
    if op == "decode" {
        let grid = CodeGrid { height: n, width: n, codes: (0..n * n).map(|i| (i * 31 % 8192) as u32).collect() };
        assert_eq!(vq.decode(&grid).expect("decode").width, px);
    } else {
        let img = Rgb { width: px, height: px, data: (0..px * px * 3).map(|i| (i * 7 % 251) as u8).collect() };
        assert_eq!(vq.encode(&img).expect("encode").width, n);
    }
    let (ms, cpu) = (t.elapsed().as_secs_f64() * 1e3, cpu_ms() - cpu0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib = |k: &str| status.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)).unwrap();
    println!("ms={ms:.0} hwm_kib={} cpu_ms={cpu:.0} vmpeak_kib={}", kib("VmHWM:"), kib("VmPeak:"));
}

/// User + system CPU time of this process so far.
fn cpu_ms() -> f64 {
    // SAFETY: getrusage only writes the struct we pass
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(u.ru_utime) + ms(u.ru_stime)
}

/// Runs `spec` in a child under an address-space cap of `cap` bytes (none
/// when 0); `Some((ms, peak resident bytes))` when it succeeded.
fn run(test: &str, spec: &str, cap: u64) -> Option<(f64, u64)> {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([test, "--exact", "--nocapture", "--include-ignored", "--test-threads=1"]).env(CHILD, spec);
    // two malloc arenas (64 MiB of address space each): the cap then does
    // not depend on how many threads this machine runs
    c.env("MALLOC_ARENA_MAX", "2");
    // SAFETY: between fork and exec only setrlimit, which is async-signal-safe
    unsafe {
        c.pre_exec(move || {
            if cap > 0 {
                let l = libc::rlimit { rlim_cur: cap, rlim_max: cap };
                if libc::setrlimit(libc::RLIMIT_AS, &l) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let out = c.output().expect("run the child");
    let text = String::from_utf8_lossy(&out.stdout);
    // libtest may print "test NAME ... " before it on the same line
    let line = &text[text.find("ms=")?..];
    let line = line.lines().next()?;
    let field = |k: &str| line.split_whitespace().find_map(|f| f.strip_prefix(k)).and_then(|v| v.parse::<f64>().ok());
    out.status.success().then(|| (field("ms=").unwrap(), field("hwm_kib=").unwrap() as u64 * 1024))
}

/// 512^2 pixels (a 32 x 32 grid) decode under 1.75 GiB of address space.
/// Measured here (2 cores, ~27 s): banded, 1.28 GB resident and 1.52 GB of
/// address space at peak; the whole-map code it replaced (`UNMASK_VQ_WHOLE=1`)
/// takes 2.05 GB resident, 2.13 GB of address space, and fails under this cap.
#[test]
fn release_vq_decodes_512_under_a_memory_cap() {
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    let cap = 1792u64 << 20;
    let (ms, peak) = run("release_vq_decodes_512_under_a_memory_cap", "decode 512", cap).unwrap_or_else(|| panic!("512^2 decode failed under {} MiB", cap >> 20));
    eprintln!("512^2 decode: {ms:.0} ms, peak resident {} MiB", peak >> 20);
}

/// The figures behind limits.rs's VQ-VAE estimate: decode and encode at
/// each side of `UNMASK_VQ_SIDES` (default 256 512), no cap; with
/// `UNMASK_VQ_WHOLE=1`, of the whole-map code.
/// `cargo test --release --test vq_memory -- --ignored --nocapture`
#[test]
#[ignore]
fn measure_release_vq() {
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    let (_, cfg, _) = unmask::plan::lumina_dimoo_8b();
    let sides = std::env::var("UNMASK_VQ_SIDES").unwrap_or_else(|_| "256 512".into());
    let ops = std::env::var("UNMASK_VQ_OPS").unwrap_or_else(|_| "decode encode".into());
    for side in sides.split_whitespace() {
        for op in ops.split_whitespace() {
            let px: usize = side.parse().unwrap();
            let est = unmask::limits::vq_bytes(&cfg, px, px);
            match run("measure_release_vq", &format!("{op} {side}"), 0) {
                Some((ms, peak)) => eprintln!("{op} {side}^2: {ms:.0} ms, peak resident {} MiB, estimate {} MiB", peak >> 20, est >> 20),
                None => eprintln!("{op} {side}^2: failed"),
            }
        }
    }
}

/// `limits::vq_parameters` counts every weight of a VQ-VAE: the fixture's
/// and the embedded model's files hold exactly that many values.
#[test]
fn vq_parameters_count_every_weight() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [here.join("../shared/fixtures/tiny-dimoo/model/vqvae"), here.join("models/unmask-shapes/vqvae")] {
        let cfg = unmask::model::VqConfig::from_file(&dir.join("config.json")).unwrap();
        let bytes = std::fs::read(dir.join("diffusion_pytorch_model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let n: usize = st.tensors().iter().map(|(_, t)| t.shape().iter().product::<usize>()).sum();
        assert_eq!(unmask::limits::vq_parameters(&cfg), n as u64, "{}", dir.display());
    }
}
