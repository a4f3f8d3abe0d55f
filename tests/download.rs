//! `unmask download` against a hub served on 127.0.0.1 by the test (issue
//! 18): a full download that `info` accepts; one cut halfway that resumes and
//! fetches only the rest (bytes counted at the server); a corrupted file
//! caught; too little disk refused before any byte; a missing token and a
//! down endpoint each get one line that says which. Issue 30: a hostile hub
//! (paths in its ETag, commit and file names, an endless body, a stalled
//! listing or body, broken redirects) gets a one-line refusal, never a
//! panic, a hang or a byte outside the test's folders; an existing folder
//! as `--dir` is refused untouched, a finished one reported as there.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::hub::{files_of, Faults, Hub, Redirect};

const REPO: &str = "test-org/tiny-dimoo";

fn fixture_files() -> Vec<(String, Vec<u8>)> {
    files_of(&common::fixture_model())
}

fn total(files: &[(String, Vec<u8>)]) -> u64 {
    files.iter().map(|(_, d)| d.len() as u64).sum()
}

/// `unmask download` with its own HF cache and no hub settings from the environment.
fn download(hub: &Hub, home: &Path, dir: &Path, extra: &[(&str, &str)]) -> Output {
    download_with(hub, home, dir, &[], extra)
}

/// The same with more flags.
fn download_with(hub: &Hub, home: &Path, dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_unmask"));
    c.args(["download", "--repo", REPO, "--endpoint", &hub.url, "--dir", dir.to_str().unwrap()])
        .args(args)
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
    assert!(!s.join("models/tiny.incomplete").exists(), "the work folder became the bundle");
    // again: already there, said without a request
    let asked = hub.requests.load(Ordering::Relaxed);
    let again = download(&hub, &s.join("hf"), &dir, &[]);
    assert!(again.status.success() && stderr(&again).contains("already holds") && stderr(&again).contains("nothing to download"), "{}", stderr(&again));
    // another revision into it is refused, naming it, before any request
    let other = download_with(&hub, &s.join("hf"), &dir, &["--revision", "v2"], &[]);
    let msg = stderr(&other);
    eprintln!("message: {msg}");
    assert!(!other.status.success() && msg.contains(dir.to_str().unwrap()) && msg.contains("nothing in it was changed"), "{msg}");
    assert_eq!(hub.requests.load(Ordering::Relaxed), asked, "no request for a folder already there or refused");
    assert!(info(&dir).status.success());
}

#[test]
fn an_empty_folder_as_dir_becomes_the_bundle() {
    let files = fixture_files();
    let hub = Hub::start(REPO, files, Faults::default());
    let s = common::scratch("dl-empty");
    let dir = s.join("tiny");
    std::fs::create_dir_all(&dir).unwrap();
    let out = download(&hub, &s.join("hf"), &dir, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(info(&dir).status.success());
}

/// Every file under `dir`, by path, with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = files_of(dir).into_iter().map(|(n, d)| (PathBuf::from(n), d)).collect();
    out.sort();
    out
}

#[test]
fn a_user_folder_as_dir_is_refused_and_kept_byte_for_byte() {
    let files = fixture_files();
    let hub = Hub::start(REPO, files.clone(), Faults::default());
    let s = common::scratch("dl-userdir");
    let photos = s.join("photos");
    std::fs::create_dir_all(photos.join("sub")).unwrap();
    std::fs::write(photos.join("photo.png"), b"\x89PNG not really").unwrap();
    std::fs::write(photos.join("notes.txt"), b"my notes").unwrap();
    std::fs::write(photos.join("sub/x.txt"), b"x").unwrap();
    let before = snapshot(&photos);
    let out = download(&hub, &s.join("hf"), &photos, &[]);
    let msg = hostile(&out);
    assert!(msg.contains(photos.to_str().unwrap()) && msg.contains("choose another --dir"), "{msg}");
    assert_eq!(snapshot(&photos), before, "every file kept, byte for byte");
    assert!(!s.join("photos.incomplete").exists() && !s.join("hf").exists(), "nothing made");

    // a folder of the user's named like our work folder is not ours either
    let tiny = s.join("tiny");
    std::fs::create_dir_all(tiny.with_extension("incomplete")).unwrap();
    std::fs::write(tiny.with_extension("incomplete").join("keep.txt"), b"mine").unwrap();
    let out = download(&hub, &s.join("hf"), &tiny, &[]);
    let msg = hostile(&out);
    assert!(msg.contains("tiny.incomplete") && msg.contains("not an unfinished download"), "{msg}");
    assert_eq!(std::fs::read(tiny.with_extension("incomplete").join("keep.txt")).unwrap(), b"mine");
    assert!(!tiny.exists());
    // a file as --dir
    std::fs::write(s.join("file"), b"data").unwrap();
    let msg = hostile(&download(&hub, &s.join("hf"), &s.join("file"), &[]));
    assert!(msg.contains("not a folder"), "{msg}");
    assert_eq!(std::fs::read(s.join("file")).unwrap(), b"data");
    assert_eq!(hub.requests.load(Ordering::Relaxed), 0, "refused before any network work");
}

/// A refused hostile run: a failure but no panic (exit 101), its error one
/// line (after at most the plan's summary line); returns the error.
fn hostile(out: &Output) -> String {
    let all = stderr(out);
    eprintln!("message: {all}");
    assert!(!out.status.success(), "must fail: {all}");
    assert_ne!(out.status.code(), Some(101), "a panic: {all}");
    assert!(!all.contains("panicked"), "a panic: {all}");
    let lines: Vec<&str> = all.trim().lines().collect();
    assert!(lines.len() == 1 || lines.len() == 2 && lines[0].ends_with("to fetch"), "one line: {all}");
    let msg = lines.last().unwrap().to_string();
    assert!(msg.starts_with("error: "), "{all}");
    msg
}

/// A hostile case's folders: the cache at S/a/b/hf, the bundle at
/// S/a/b/models/tiny, so six `..` from the cache's blobs reach S.
struct Case {
    root: PathBuf,
    home: PathBuf,
    dir: PathBuf,
}

fn case(name: &str) -> Case {
    let root = common::scratch(name);
    Case { home: root.join("a/b/hf"), dir: root.join("a/b/models/tiny"), root }
}

/// A marked name for a value that would be a path: unique to this run.
fn marker(what: &str) -> String {
    format!("ESCAPED_{}_{what}", std::process::id())
}

/// Nothing written outside the cache and the bundle's folder: no path under
/// the case's root but those (and their parents), no marked name anywhere
/// under it or at the top of the temporary folder.
fn no_strays(c: &Case) {
    let allowed = [c.home.clone(), c.dir.parent().unwrap().to_path_buf()];
    let mut stack = vec![c.root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!name.contains("ESCAPED"), "written outside: {}", p.display());
            let inside = allowed.iter().any(|a| p.starts_with(a));
            assert!(inside || allowed.iter().any(|a| a.starts_with(&p)), "stray: {}", p.display());
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    let pid = format!("ESCAPED_{}_", std::process::id());
    for e in std::fs::read_dir(std::env::temp_dir()).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.contains(&pid), "written outside the test's folder: {n}");
    }
}

#[test]
fn hub_values_that_would_be_paths_are_refused() {
    let files = fixture_files();
    let up6 = "../".repeat(6);
    let cases: Vec<(&str, Faults, &str)> = vec![
        ("etag", Faults { etag: Some(format!("\"{up6}{}\"", marker("ETAG"))), ..Default::default() }, "ETag"),
        ("commit", Faults { commit: Some(format!("{up6}{}", marker("COMMIT"))), ..Default::default() }, "commit"),
        ("sha", Faults { sha: Some(format!("{up6}{}", marker("SHA"))), ..Default::default() }, "commit"),
    ];
    for (name, faults, word) in cases {
        let c = case(&format!("dl-path-{name}"));
        let hub = Hub::start(REPO, files.clone(), faults);
        let msg = hostile(&download(&hub, &c.home, &c.dir, &[]));
        assert!(msg.contains(word) && msg.contains("refused"), "{name}: {msg}");
        assert_eq!(hub.served.load(Ordering::Relaxed), 0, "{name}: no body fetched");
        no_strays(&c);
    }
    // shard names from the weight index: up, absolute, Windows-style
    let up4 = "../".repeat(4);
    for (i, shard) in [format!("{up4}{}.safetensors", marker("NAME")), format!("/{}.safetensors", marker("ABS")), format!("sub\\..\\..\\{}.safetensors", marker("BACK"))].into_iter().enumerate() {
        let mut files = files.clone();
        let (_, index) = files.iter_mut().find(|(n, _)| n == "model.safetensors.index.json").unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(index).unwrap();
        let first = v["weight_map"].as_object().unwrap().keys().next().unwrap().clone();
        v["weight_map"][first] = shard.clone().into();
        *index = serde_json::to_vec(&v).unwrap();
        files.push((shard.clone(), b"weights".to_vec()));
        let c = case(&format!("dl-path-name{i}"));
        let hub = Hub::start(REPO, files, Faults::default());
        let msg = hostile(&download(&hub, &c.home, &c.dir, &[]));
        assert!(msg.contains("shard") && msg.contains("inside the repo"), "{shard}: {msg}");
        no_strays(&c);
    }
    // --revision is a path in the cache too: refused before any request
    let c = case("dl-path-rev");
    let hub = Hub::start(REPO, files.clone(), Faults::default());
    for rev in ["../..", "/abs", "a\\b"] {
        let msg = hostile(&download_with(&hub, &c.home, &c.dir, &["--revision", rev], &[]));
        assert!(msg.contains("--revision"), "{msg}");
    }
    assert_eq!(hub.requests.load(Ordering::Relaxed), 0);
    no_strays(&c);
}

#[test]
fn an_endless_body_fails_the_file_and_writes_nothing_past_its_size() {
    let files = fixture_files();
    let (name, data) = files.iter().find(|(n, _)| n == "config.json").cloned().unwrap();
    let c = case("dl-endless");
    let hub = Hub::start(REPO, files.clone(), Faults { endless: Some(name.clone()), ..Default::default() });
    let started = Instant::now();
    let msg = hostile(&download_with(&hub, &c.home, &c.dir, &["--timeout", "2"], &[]));
    assert!(msg.contains(&name) && msg.contains(&format!("more than the {} bytes", data.len())), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    // nothing of it in the cache, no file longer than the fixture's largest
    let largest = files.iter().map(|(_, d)| d.len() as u64).max().unwrap();
    for (n, d) in files_of(&c.home) {
        assert!(d.len() as u64 <= largest && !n.ends_with(".part"), "{n}: {} bytes", d.len());
    }
    no_strays(&c);
    hub.faults.lock().unwrap().endless = None;
    let ok = download(&hub, &c.home, &c.dir, &[]);
    assert!(ok.status.success(), "{}", stderr(&ok));
}

#[test]
fn a_stalled_listing_and_a_stalled_body_time_out_and_keep_their_bytes() {
    let files = fixture_files();
    // the listing, a byte every 0.3 s: a read never waits a second, the whole does
    let c = case("dl-drip");
    let hub = Hub::start(REPO, files.clone(), Faults { drip_list: Some(Duration::from_millis(300)), ..Default::default() });
    let started = Instant::now();
    let msg = hostile(&download_with(&hub, &c.home, &c.dir, &["--timeout", "1"], &[]));
    assert!(msg.contains("listing the repo") && msg.contains("within 1 s") && msg.contains("again"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    no_strays(&c);

    // a body that stops halfway and holds the connection
    let (big, size) = files.iter().map(|(n, d)| (n.clone(), d.len() as u64)).max_by_key(|(_, l)| *l).unwrap();
    let c = case("dl-stall");
    let hub = Hub::start(REPO, files.clone(), Faults { stall: Some((big.clone(), size / 2)), ..Default::default() });
    let started = Instant::now();
    let msg = hostile(&download_with(&hub, &c.home, &c.dir, &["--timeout", "1"], &[]));
    assert!(msg.contains(&big) && msg.contains("no data") && msg.contains("kept") && msg.contains("again"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    no_strays(&c);
    let first = hub.served.load(Ordering::Relaxed);
    hub.faults.lock().unwrap().stall = None;
    let ok = download(&hub, &c.home, &c.dir, &[]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(hub.served.load(Ordering::Relaxed), total(&files), "the resume fetched only the rest ({first} before)");
}

#[test]
fn broken_redirects_are_one_line_errors() {
    let files = fixture_files();
    for (mode, words) in [(Redirect::NoLocation, "without a Location"), (Redirect::Loop, "more than 5 times")] {
        let c = case(&format!("dl-redirect-{mode:?}"));
        let hub = Hub::start(REPO, files.clone(), Faults { redirect: Some(mode), ..Default::default() });
        let started = Instant::now();
        let msg = hostile(&download_with(&hub, &c.home, &c.dir, &["--timeout", "2"], &[]));
        assert!(msg.contains(words) && msg.contains("redirect"), "{mode:?}: {msg}");
        assert!(started.elapsed() < Duration::from_secs(8));
        no_strays(&c);
    }
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
