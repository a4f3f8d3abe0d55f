//! The Studio on a server (issue 19): Model > Connect to server... against
//! `unmask serve` on 127.0.0.1 runs a retouch with streamed previews (the
//! same pixels as the same retouch here), cancels a run, remembers the
//! server, and turns a lost server into an error notice that keeps the canvas.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{harness, until};
use egui_kittest::kittest::Queryable;
use unmask::remote::{ServeConfig, Server};
use unmask_studio::{Mode, Studio, StudioOptions};

const TOKEN: &str = "studio-test-token-0123456789";

fn server() -> Server {
    let mut cfg = ServeConfig::new(common::fixtures().join("model"), "127.0.0.1:0".parse().unwrap(), TOKEN);
    cfg.device = unmask::DeviceChoice::Cpu;
    cfg.keep_alive = Duration::from_millis(200);
    Server::start(cfg).expect("test server")
}

fn studio(settings: Option<PathBuf>) -> Studio {
    let mut s = common::fixture_studio(settings);
    s.settings.context = unmask::crop::Context::Whole;
    s.prompt = "a red circle on the left".into();
    s.edit_mask(|m| unmask_studio::mask_paint::rectangle(m, (8.0, 4.0), (24.0, 16.0), false));
    s
}

/// The retouch's result when it runs in this process (the reference).
fn local_result() -> image::RgbImage {
    let mut s = studio(None);
    s.start_retouch();
    assert!(s.wait_idle(Duration::from_secs(60)));
    let doc = s.doc.as_ref().unwrap();
    assert_eq!(doc.versions.len(), 2, "{:?}", s.notices);
    doc.image().clone()
}

fn connect(h: &mut egui_kittest::Harness<'static, Studio>, url: &str) {
    h.get_by_label("Model").click();
    h.run_steps(2);
    h.get_by_label("Connect to server...").click();
    h.run_steps(2);
    assert!(h.state().connect_open, "the dialog opens");
    h.state_mut().connect_url = url.to_string();
    h.state_mut().connect_token = TOKEN.to_string();
    h.run_steps(2);
    h.get_by_label("Connect").click();
    h.run_steps(2);
    until(h, "connected", |s| s.model_info().is_some() && s.server().is_some());
}

/// A 1000-step sketch, started with its button, once its first step is in.
fn start_long_sketch(h: &mut egui_kittest::Harness<'static, Studio>) {
    h.state_mut().settings.steps = 1000;
    h.state_mut().mode = Mode::Sketch;
    h.run_steps(2);
    h.get_by_label("Run sketch").click();
    h.run_steps(2);
    until(h, "first step on the server", |s| s.run.as_ref().is_some_and(|r| r.progress_events > 0));
}

#[test]
fn a_retouch_on_a_server_streams_previews_and_a_run_cancels() {
    let want = local_result();
    let srv = server();
    let url = format!("http://{}", srv.addr);
    let dir = std::env::temp_dir().join(format!("unmask-studio-{}-remote", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let settings = dir.join("settings.json");
    let mut h = harness(studio(Some(settings.clone())), 1100.0, 700.0);
    connect(&mut h, &url);
    // the status bar names the server and its device
    let _ = h.get_by_label_contains(&format!("server {url}"));
    assert!(h.state().model_info().unwrap().device.contains("cpu"));

    h.get_by_label("Run retouch").click();
    h.step();
    assert!(h.state().is_running(), "the run started: {:?}", h.state().notices);
    let (mut events, mut previews) = (0, 0);
    while h.state().is_running() {
        if let Some(r) = h.state().run.as_ref() {
            events = events.max(r.progress_events);
            previews = previews.max(r.preview_revision);
        }
        std::thread::sleep(Duration::from_millis(2));
        h.step();
    }
    h.run_steps(2);
    let st = h.state();
    let doc = st.doc.as_ref().unwrap();
    assert_eq!(doc.versions.len(), 2, "a new history entry: {:?}", st.notices);
    assert!(events >= 1 && previews >= 1, "progress ({events}) and previews ({previews}) streamed from the server");
    assert_eq!(doc.image(), &want, "the server's retouch is the local one, pixel for pixel");
    assert!(doc.version().parameters.as_deref().unwrap_or("").contains("Steps: 6"));

    // a long sketch, cancelled with the button: the canvas stays as it was
    let before = doc.image().clone();
    start_long_sketch(&mut h);
    h.get_by_label("Cancel  (Esc)").click();
    until(&mut h, "cancelled", |s| !s.is_running());
    let st = h.state();
    assert!(st.notices.iter().any(|n| n.title == "Cancelled"), "{:?}", st.notices);
    assert_eq!(st.doc.as_ref().unwrap().image(), &before);
    assert_eq!(st.doc.as_ref().unwrap().versions.len(), 2);
    let client = unmask::remote::Client::new(&url, TOKEN).unwrap();
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while client.info().unwrap().queued != 0 {
        assert!(std::time::Instant::now() < end, "the server's queue empties after the cancel");
        std::thread::sleep(Duration::from_millis(20));
    }

    // remembered: a new Studio with these settings connects at start
    h.step();
    drop(h);
    let saved = unmask_studio::settings::Settings::load(&settings);
    assert!(saved.use_server && saved.server_url == url && saved.server_token == TOKEN, "{saved:?}");
    let mut again = Studio::new(StudioOptions { settings_path: Some(settings), model_dir: None, open: None, ctx: None, session_dir: None });
    assert!(again.wait_idle(Duration::from_secs(30)));
    assert_eq!(again.server(), Some(url.as_str()));
    assert!(again.model_info().is_some(), "{:?}", again.notices);
}

#[test]
fn a_lost_server_is_an_error_notice_and_the_canvas_stays() {
    let srv = server();
    let url = format!("http://{}", srv.addr);
    let mut h = harness(studio(None), 1100.0, 700.0);
    connect(&mut h, &url);
    let before = h.state().doc.as_ref().unwrap().image().clone();
    start_long_sketch(&mut h);
    srv.stop();
    until(&mut h, "the run ends", |s| !s.is_running());
    let st = h.state();
    let n = st.notices.iter().find(|n| n.is_error).unwrap_or_else(|| panic!("an error notice: {:?}", st.notices));
    assert!(n.detail.contains(&url) && n.detail.contains("canvas"), "{n:?}");
    let doc = st.doc.as_ref().unwrap();
    assert_eq!(doc.image(), &before, "the canvas is untouched");
    assert_eq!(doc.versions.len(), 1);
    assert!(!doc.mask_is_empty(), "the mask is kept");
    // a new run on the gone server fails with a clear message, and nothing is lost either
    h.state_mut().settings.steps = 4;
    h.state_mut().start_sketch();
    until(&mut h, "the run ends", |s| !s.is_running());
    let last = h.state().notices.last().unwrap().clone();
    assert!(last.is_error && last.detail.contains("cannot reach"), "{last:?}");
}
