//! With the `cuda` feature: compiles the fused attention kernel
//! (src/model/attention/flash.cu) to PTX, one module per head dimension (16,
//! 32, ..., 256), for compute capability 8.0; the driver builds it for the
//! card it finds (Ampere, Ada, Hopper and later). Without the feature it does
//! nothing, so CPU builds need no CUDA toolkit.

use std::path::PathBuf;
use std::process::Command;

const KERNEL: &str = "src/model/attention/flash.cu";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={KERNEL}");
    println!("cargo:rerun-if-env-changed=NVCC");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let nvcc = std::env::var("NVCC").ok().or_else(|| std::env::var("CUDA_HOME").ok().map(|h| format!("{h}/bin/nvcc"))).unwrap_or_else(|| "nvcc".into());
    let dims: Vec<usize> = (1..=16).map(|i| i * 16).collect();
    // two at a time: these machines have two cores
    let results: Vec<(usize, Result<(), String>)> = dims
        .chunks(2)
        .flat_map(|pair| {
            let handles: Vec<_> = pair
                .iter()
                .map(|&d| {
                    let (nvcc, ptx) = (nvcc.clone(), out.join(format!("flash_d{d}.ptx")));
                    std::thread::spawn(move || {
                        let r = Command::new(&nvcc)
                            .args(["--ptx", "-arch=compute_80", "-O3", "-use_fast_math", "-std=c++17"])
                            .arg(format!("-DHEAD_DIM={d}"))
                            .arg(KERNEL)
                            .arg("-o")
                            .arg(&ptx)
                            .output();
                        let r = match r {
                            Ok(o) if o.status.success() => Ok(()),
                            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
                            Err(e) => Err(format!("cannot run `{nvcc}` ({e}): set NVCC or CUDA_HOME (see ../shared/notes/cuda.md)")),
                        };
                        (d, r)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("nvcc thread")).collect::<Vec<_>>()
        })
        .collect();
    for (d, r) in &results {
        if let Err(e) = r {
            panic!("nvcc failed on {KERNEL} with HEAD_DIM={d}:\n{e}");
        }
    }
    let table: String = dims.iter().map(|d| format!("    ({d}, include_str!(concat!(env!(\"OUT_DIR\"), \"/flash_d{d}.ptx\"))),\n")).collect();
    let src = format!("pub const FLASH_PTX: [(usize, &str); {}] = [\n{table}];\n", dims.len());
    std::fs::write(out.join("flash_ptx.rs"), src).expect("write flash_ptx.rs");
}
