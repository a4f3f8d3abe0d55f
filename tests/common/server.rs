//! A `unmask serve` on 127.0.0.1 (in the test's process) with the fixture
//! model, and raw HTTP helpers for tests that send what no client would.
#![allow(dead_code)]

use std::time::Duration;

use unmask::remote::{ServeConfig, Server};

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// A server on a free port; `max_body` None keeps the protocol's limit.
pub fn start(max_body: Option<usize>) -> Server {
    start_with(&super::fixture_model(), max_body)
}

pub fn start_with(model: &std::path::Path, max_body: Option<usize>) -> Server {
    let mut cfg = config(model);
    if let Some(m) = max_body {
        cfg.max_body = m;
    }
    Server::start(cfg).expect("start the test server")
}

/// A server with the fixture model and `change` made to the test config.
pub fn start_config(change: impl FnOnce(&mut ServeConfig)) -> Server {
    let mut cfg = config(&super::fixture_model());
    change(&mut cfg);
    Server::start(cfg).expect("start the test server")
}

fn config(model: &std::path::Path) -> ServeConfig {
    let mut cfg = ServeConfig::new(model, "127.0.0.1:0".parse().unwrap(), TOKEN);
    cfg.device = unmask::DeviceChoice::Cpu;
    // a vanished client is noticed within this
    cfg.keep_alive = Duration::from_millis(200);
    cfg
}

pub fn url(s: &Server) -> String {
    format!("http://{}", s.addr)
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(120))).build().new_agent()
}

/// (status, body) of one request; `token` None sends no Authorization.
pub fn call(s: &Server, method: &str, path: &str, token: Option<&str>, client: Option<&str>, body: Option<&[u8]>) -> (u16, String) {
    let uri = format!("{}{path}", url(s));
    let mut req = ureq::http::Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(c) = client {
        req = req.header("x-unmask-client", c);
    }
    let req = req.header("content-type", "application/json").body(body.map(|b| b.to_vec()).unwrap_or_default()).unwrap();
    let mut r = agent().run(req).expect("request");
    let status = r.status().as_u16();
    let text = r.body_mut().with_config().limit(1 << 30).read_to_string().unwrap_or_default();
    (status, text)
}

/// The server's count of queued and running jobs.
pub fn queued(s: &Server) -> usize {
    let (code, body) = call(s, "GET", "/v1/model", Some(TOKEN), None, None);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["queued"].as_u64().unwrap() as usize
}

/// Waits until `f` holds, up to `secs`.
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for: {what}");
}
