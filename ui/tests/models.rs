//! The model manager (issue 18): the download dialog against a hub served
//! on 127.0.0.1 fetches the fixture bundle with progress, the Studio loads it
//! when it is complete and remembers it for the picker; an interrupted
//! download resumes with only the missing bytes; Cancel stops a slow one, Resume finishes it.

mod common;
#[path = "../../tests/common/hub.rs"]
mod hub;

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use common::{harness, until};
use egui_kittest::kittest::Queryable;
use unmask_studio::{Studio, StudioOptions};

fn fixture_model() -> PathBuf {
    common::fixtures().join("model")
}

fn request(hub: &hub::Hub, dir: &std::path::Path) -> unmask::hub::Request {
    unmask::hub::Request {
        repo: "test-org/tiny".into(),
        revision: "main".into(),
        dir: dir.join("model"),
        endpoint: Some(hub.url.clone()),
        token: None,
        cache: Some(dir.join("hf")),
        timeout: None,
    }
}

#[test]
fn a_download_shows_progress_and_the_studio_loads_the_model() {
    let files = hub::files_of(&fixture_model());
    let total: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    let server = hub::Hub::start("test-org/tiny", files, hub::Faults::default());
    let dir = common::scratch("download");
    // no model at start: the download is what brings one
    let s = Studio::new(StudioOptions { settings_path: None, model_dir: Some(dir.join("none")), open: None, ctx: None, session_dir: None });
    let mut h = harness(s, 1100.0, 760.0);
    h.get_by_label("Model").click();
    h.run_steps(2);
    h.get_by_label("Download Lumina-DiMOO...").click();
    h.run_steps(2);
    assert!(h.state().download_open, "the dialog opens");
    h.state_mut().start_download(request(&server, &dir));
    until(&mut h, "the download and the load", |s| s.model_info().is_some());
    let st = h.state();
    let d = st.download.as_ref().unwrap();
    assert!(matches!(&d.outcome, Some(Ok(p)) if p == &dir.join("model")), "{:?}", d.outcome);
    // progress counts what is fetched after planning (the weight index comes first, to plan)
    assert!(d.to_fetch > total / 2 && d.fetched == d.to_fetch, "progress reached every byte: {} of {}", d.fetched, d.to_fetch);
    assert_eq!(server.served.load(Ordering::Relaxed), total);
    assert_eq!(PathBuf::from(&st.model_info().unwrap().path), dir.join("model"), "the downloaded model is loaded");
    assert!(st.settings.opened_models.contains(&dir.join("model")), "and remembered for the picker");
}

#[test]
fn an_interrupted_download_keeps_its_bytes_and_resumes() {
    let files = hub::files_of(&fixture_model());
    let total: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    // the connection drops halfway through the largest file
    let (big, size) = files.iter().map(|(n, d)| (n.clone(), d.len() as u64)).max_by_key(|(_, l)| *l).unwrap();
    let server = hub::Hub::start("test-org/tiny", files, hub::Faults { cut: Some((big, size / 2)), ..Default::default() });
    let dir = common::scratch("resume");
    let s = Studio::new(StudioOptions { settings_path: None, model_dir: Some(dir.join("none")), open: None, ctx: None, session_dir: None });
    let mut h = harness(s, 1100.0, 760.0);
    h.state_mut().start_download(request(&server, &dir));
    until(&mut h, "the cut", |s| s.download.as_ref().is_some_and(|d| !d.running()));
    let first = server.served.load(Ordering::Relaxed);
    let msg = format!("{:?}", h.state().download.as_ref().unwrap().outcome);
    assert!(msg.contains("again"), "says to resume: {msg}");
    assert!(unmask::hub::incomplete(&dir.join("model")).is_some(), "an unfinished folder, never a model");
    assert!(h.state().model_info().is_none());
    server.faults.lock().unwrap().cut = None;
    h.state_mut().start_download(request(&server, &dir));
    until(&mut h, "the resumed download and the load", |s| s.model_info().is_some());
    assert_eq!(server.served.load(Ordering::Relaxed), total, "the resume fetched only the rest ({first} before)");
}

#[test]
fn cancel_stops_a_slow_download_and_resume_finishes_it() {
    let files = hub::files_of(&fixture_model());
    let total: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    let server = hub::Hub::start("test-org/tiny", files, hub::Faults { slow: Some(std::time::Duration::from_millis(20)), ..Default::default() });
    let dir = common::scratch("cancel");
    let s = Studio::new(StudioOptions { settings_path: None, model_dir: Some(dir.join("none")), open: None, ctx: None, session_dir: None });
    let mut h = harness(s, 1100.0, 760.0);
    h.state_mut().start_download(request(&server, &dir));
    until(&mut h, "the first bytes", |s| s.download.as_ref().is_some_and(|d| d.fetched > 0));
    h.state().download.as_ref().unwrap().cancel();
    until(&mut h, "the cancel", |s| s.download.as_ref().is_some_and(|d| !d.running()));
    let msg = format!("{:?}", h.state().download.as_ref().unwrap().outcome);
    assert!(msg.contains("cancelled"), "{msg}");
    assert!(server.served.load(Ordering::Relaxed) < total, "stopped before the end");
    assert!(h.state().model_info().is_none() && unmask::hub::incomplete(&dir.join("model")).is_some());
    server.faults.lock().unwrap().slow = None;
    h.state_mut().start_download(request(&server, &dir));
    until(&mut h, "the resumed download and the load", |s| s.model_info().is_some());
    assert_eq!(PathBuf::from(&h.state().model_info().unwrap().path), dir.join("model"));
}

/// A build that cannot run the 8B model (no CUDA, or no GPU) says so before
/// the download, with the plan's figures, and offers a server first;
/// downloading anyway stays possible, e.g. to copy it to a server (issue 29).
#[test]
fn without_a_gpu_the_download_dialog_offers_a_server_first() {
    if unmask::device_memory::gpu_count() > 0 {
        return; // a CUDA build on a GPU machine runs it here
    }
    let dir = common::scratch("no-gpu");
    let s = Studio::new(StudioOptions { settings_path: None, model_dir: Some(dir.join("none")), open: None, ctx: None, session_dir: None });
    let mut h = harness(s, 1100.0, 760.0);
    h.get_by_label("Model").click();
    h.run_steps(2);
    h.get_by_label("Download Lumina-DiMOO...").click();
    h.run_steps(2);
    let note = h.get_by_label_contains("This build cannot run Lumina-DiMOO here");
    let bf16 = unmask::limits::gib(unmask::plan::lumina_dimoo_8b_peak(1024, None));
    let q4k = unmask::limits::gib(unmask::plan::lumina_dimoo_8b_peak(512, Some(unmask::quantize::QuantType::Q4K)));
    let _ = h.get_by_label_contains(&format!("about {bf16} (1024x1024)"));
    let _ = h.get_by_label_contains(&format!(" / {q4k} as q4k"));
    let (connect, anyway) = (h.get_by_label("Connect to server..."), h.get_by_label("Download anyway"));
    assert!(note.rect().bottom() <= connect.rect().top() && connect.rect().bottom() <= anyway.rect().top(), "the note, then the server, then the download");
    assert!(h.query_by_label("Start").is_none(), "no plain Start without the note");
    connect.click();
    h.run_steps(2);
    assert!(h.state().connect_open && h.state().download.is_none(), "Connect to server opens its dialog; nothing is fetched");
    let _ = h.get_by_label("Connect");
}
