//! `unmask download` against a hub served on 127.0.0.1 by the test (issue
//! 18): a full download that `info` accepts; one cut halfway that resumes and
//! fetches only the rest (bytes counted at the server); a corrupted file
//! caught; too little disk refused before any byte; a missing token and a
//! down endpoint each get one line that says which.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::Ordering;

use common::hub::{files_of, Faults, Hub};

const REPO: &str = "test-org/tiny-dimoo";

fn fixture_files() -> Vec<(String, Vec<u8>)> {
    files_of(&common::fixture_model())
}

fn total(files: &[(String, Vec<u8>)]) -> u64 {
    files.iter().map(|(_, d)| d.len() as u64).sum()
}

/// `unmask download` with its own HF cache and no hub settings from the environment.
fn download(hub: &Hub, home: &Path, dir: &Path, extra: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_unmask"));
    c.args(["download", "--repo", REPO, "--endpoint", &hub.url, "--dir", dir.to_str().unwrap()])
        .env("HF_HOME", home)
        .env_remove("HF_TOKEN")
        .env_remove("HF_ENDPOINT")
        .env_remove("UNMASK_DISK_FREE");
    for (k, v) in extra {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn info(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unmask")).args(["info", "--model", dir.to_str().unwrap()]).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_full_download_is_a_bundle_info_accepts() {
    let files = fixture_files();
    let hub = Hub::start(REPO, files.clone(), Faults::default());
    let s = common::scratch("dl-full");
    let dir = s.join("models/tiny");
    let out = download(&hub, &s.join("hf"), &dir, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(hub.served.load(Ordering::Relaxed), total(&files), "every byte once");
    let i = info(&dir);
    assert!(i.status.success(), "{}", stderr(&i));
    // the files are the hub's, byte for byte
    for (name, data) in &files {
        assert_eq!(&std::fs::read(dir.join(name)).unwrap(), data, "{name}");
    }
    // again: nothing to fetch, the folder is refused as a target (it holds a model)
    let again = download(&hub, &s.join("hf"), &dir, &[]);
    assert!(!again.status.success() && stderr(&again).contains("already holds a model"), "{}", stderr(&again));
}

#[test]
fn a_download_cut_halfway_resumes_and_fetches_only_the_rest() {
    let files = fixture_files();
    let (big, size) = files.iter().map(|(n, d)| (n.clone(), d.len() as u64)).max_by_key(|(_, l)| *l).unwrap();
    let hub = Hub::start(REPO, files.clone(), Faults { cut: Some((big.clone(), size / 2)), ..Default::default() });
    let s = common::scratch("dl-cut");
    let dir = s.join("tiny");
    let first = download(&hub, &s.join("hf"), &dir, &[]);
    assert!(!first.status.success(), "the cut must fail the run");
    let msg = stderr(&first);
    eprintln!("message: {msg}");
    assert!(msg.contains(&big) && msg.contains("again"), "names the file and says to run again: {msg}");
    let served_first = hub.served.load(Ordering::Relaxed);
    assert!(served_first < total(&files));
    // half a download is never a model
    let i = info(&dir);
    assert!(!i.status.success());
    let im = stderr(&i);
    assert!(im.contains("unfinished download") && im.contains("resume"), "{im}");

    hub.faults.lock().unwrap().cut = None;
    let second = download(&hub, &s.join("hf"), &dir, &[]);
    assert!(second.status.success(), "{}", stderr(&second));
    let served_second = hub.served.load(Ordering::Relaxed) - served_first;
    assert_eq!(served_first + served_second, total(&files), "the resume fetched only what was missing");
    assert!(served_first >= size / 2, "the cut file's first half was kept");
    assert!(info(&dir).status.success());
}

#[test]
fn a_corrupted_file_is_caught_and_fetched_anew() {
    let files = fixture_files();
    let hub = Hub::start(REPO, files.clone(), Faults { corrupt: Some("model-00002-of-00002.safetensors".into()), ..Default::default() });
    let s = common::scratch("dl-corrupt");
    let dir = s.join("tiny");
    let out = download(&hub, &s.join("hf"), &dir, &[]);
    assert!(!out.status.success());
    let msg = stderr(&out);
    eprintln!("message: {msg}");
    assert!(msg.contains("model-00002-of-00002.safetensors") && msg.contains("hash"), "{msg}");
    assert!(!info(&dir).status.success(), "no bundle from corrupt bytes");
    hub.faults.lock().unwrap().corrupt = None;
    let again = download(&hub, &s.join("hf"), &dir, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(info(&dir).status.success());
}

#[test]
fn too_little_disk_is_refused_before_any_byte() {
    let files = fixture_files();
    let index = files.iter().find(|(n, _)| n == "model.safetensors.index.json").map(|(_, d)| d.len() as u64).unwrap();
    let hub = Hub::start(REPO, files, Faults::default());
    let s = common::scratch("dl-disk");
    let out = download(&hub, &s.join("hf"), &s.join("tiny"), &[("UNMASK_DISK_FREE", "100K")]);
    assert!(!out.status.success());
    let msg = stderr(&out);
    eprintln!("message: {msg}");
    assert!(msg.contains("free") && msg.contains("space"), "{msg}");
    // only the weight index, which names the shards to plan for
    assert_eq!(hub.served.load(Ordering::Relaxed), index, "nothing but the index transferred");
}

#[test]
fn a_refused_token_and_a_down_endpoint_say_which() {
    let files = fixture_files();
    let hub = Hub::start(REPO, files, Faults { token: Some("secret".into()), ..Default::default() });
    let s = common::scratch("dl-token");
    let out = download(&hub, &s.join("hf"), &s.join("tiny"), &[]);
    assert!(!out.status.success());
    let msg = stderr(&out);
    eprintln!("message: {msg}");
    assert!(msg.contains("token") && msg.contains("HF_TOKEN"), "{msg}");
    assert_eq!(msg.trim().lines().count(), 1, "one line: {msg}");
    let ok = download(&hub, &s.join("hf"), &s.join("tiny"), &[("HF_TOKEN", "secret")]);
    assert!(ok.status.success(), "HF_TOKEN is honoured: {}", stderr(&ok));

    // nothing listens on port 9 of loopback
    let down = Command::new(env!("CARGO_BIN_EXE_unmask"))
        .args(["download", "--repo", REPO, "--endpoint", "http://127.0.0.1:9", "--dir", s.join("t2").to_str().unwrap()])
        .env("HF_HOME", s.join("hf"))
        .output()
        .unwrap();
    assert!(!down.status.success());
    let msg = stderr(&down);
    eprintln!("message: {msg}");
    assert!(msg.contains("cannot reach") && msg.contains("127.0.0.1:9"), "{msg}");
    assert_eq!(msg.trim().lines().count(), 1, "one line: {msg}");
}
