//! `unmask serve` on 127.0.0.1: the golden cases through `--server`, the
//! token on every route, malformed requests, clients that vanish, slow and
//! too many clients (cut, refused, logged), and a bounded load test (16
//! clients x 4 jobs) that checks every event.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::server::{self, call, eventually, queued, TOKEN};
use unmask::remote::protocol::WireEvent;
use unmask::remote::Client;
use unmask::sampler::ImageSettings;
use unmask::tasks::{Job, Output};
use unmask::worker::PreviewOptions;

fn unmask(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unmask")).args(args).env_remove("UNMASK_TOKEN").output().expect("run unmask");
    assert!(out.status.success(), "unmask {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn codes_of(path: &Path) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["codes"].clone()
}

fn b64_file(p: &Path) -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(p).unwrap())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn every_golden_case_through_server_gives_the_local_codes() {
    let s = server::start(None);
    let url = server::url(&s);
    let cases = common::cases_json();
    let dir = common::scratch("server-golden");
    let input = common::case("input.png");
    let mask = common::case("mask.png");
    let remote = ["--server", url.as_str(), "--token", TOKEN];
    for (name, extra) in [
        ("t2i", vec![]),
        ("t2i_nocfg", vec![]),
        ("t2i_cache", vec!["--cache", "--cache-ratio", "0.7", "--warmup-ratio", "0.3", "--refresh-interval", "3"]),
    ] {
        let case = &cases[name];
        let (png, codes) = (dir.join(format!("{name}.png")), dir.join(format!("{name}.json")));
        let (steps, cfg) = (case["steps"].to_string(), case["cfg"].to_string());
        let mut args = vec!["generate", "--prompt", case["prompt"].as_str().unwrap(), "--width", "40", "--height", "24"];
        args.extend(["--steps", &steps, "--cfg", &cfg, "--temperature", "0", "--seed", "0"]);
        args.extend(["--out", png.to_str().unwrap(), "--tokens-out", codes.to_str().unwrap()]);
        args.extend(remote);
        args.extend(extra);
        unmask(&args);
        assert_eq!(codes_of(&codes), case["codes"], "{name} through the server");
        let params = unmask::image_io::png_parameters(&std::fs::read(&png).unwrap()).expect("parameters chunk");
        assert!(params.starts_with(case["prompt"].as_str().unwrap()) && params.contains("Steps: "), "{params}");
    }

    let case = &cases["inpaint"];
    let (png, codes) = (dir.join("inpaint.png"), dir.join("inpaint.json"));
    let mut args = vec!["inpaint", "--prompt", case["prompt"].as_str().unwrap(), "--image", input.to_str().unwrap()];
    args.extend(["--mask", mask.to_str().unwrap(), "--steps", "5", "--cfg", "4", "--temperature", "0", "--seed", "0"]);
    args.extend(["--feather", "0", "--context", "whole", "--out", png.to_str().unwrap(), "--tokens-out", codes.to_str().unwrap()]);
    args.extend(remote);
    unmask(&args);
    assert_eq!(codes_of(&codes), case["codes"], "inpaint through the server");

    let case = &cases["edit"];
    let (png, codes) = (dir.join("edit.png"), dir.join("edit.json"));
    let mut args = vec!["edit", "--prompt", case["prompt"].as_str().unwrap(), "--image", input.to_str().unwrap(), "--fit", "native"];
    args.extend(["--steps", "5", "--cfg", "2.5", "--cfg-img", "4", "--temperature", "0", "--seed", "0"]);
    args.extend(["--out", png.to_str().unwrap(), "--tokens-out", codes.to_str().unwrap()]);
    args.extend(remote);
    unmask(&args);
    assert_eq!(codes_of(&codes), case["codes"], "edit through the server");

    let case = &cases["mmu"];
    let mut args = vec!["ask", "--image", input.to_str().unwrap(), "--question", case["question"].as_str().unwrap()];
    args.extend(["--gen-length", "16", "--block-length", "8", "--steps", "8", "--temperature", "0", "--json"]);
    args.extend(remote);
    let (out, _) = unmask(&args);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["answer"], case["answer"]);
    assert_eq!(v["answer_ids"], case["answer_ids"]);

    // an outpaint's PNG is byte-identical to the local run's (same crops, same pixels)
    let (local, there) = (dir.join("out-local.png"), dir.join("out-remote.png"));
    let model = common::fixture_model();
    let out_args = |out: &Path| {
        let mut a: Vec<String> = ["outpaint", "--prompt", "a blue square", "--image", input.to_str().unwrap(), "--left", "8", "--bottom", "4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["--steps", "4", "--temperature", "0", "--seed", "3", "--out", out.to_str().unwrap()].iter().map(|s| s.to_string()));
        a
    };
    let mut a = out_args(&local);
    a.extend(["--model".to_string(), model.to_str().unwrap().to_string()]);
    unmask(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let mut a = out_args(&there);
    a.extend(remote.iter().map(|s| s.to_string()));
    unmask(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(std::fs::read(&local).unwrap(), std::fs::read(&there).unwrap(), "outpaint PNG local vs server");

    // a two-region inpaint (protocol 2): the server's codes and pixels are the local run's
    let second = dir.join("region-b.png");
    let (w, h) = image::image_dimensions(&input).unwrap();
    image::GrayImage::from_fn(w, h, |x, y| image::Luma([if x >= w / 2 && y >= h / 2 { 255 } else { 0 }])).save(&second).unwrap();
    let region_args = |png: &Path, codes: &Path| -> Vec<String> {
        let mut a: Vec<String> = vec!["inpaint".into(), "--image".into(), input.to_str().unwrap().into()];
        a.extend(["--region".into(), mask.to_str().unwrap().into(), cases["inpaint"]["prompt"].as_str().unwrap().into()]);
        a.extend(["--region".into(), second.to_str().unwrap().into(), "a blue square".into()]);
        for s in ["--steps", "5", "--cfg", "4", "--temperature", "0", "--seed", "0", "--feather", "0", "--context", "whole"] {
            a.push(s.into());
        }
        a.extend(["--out".into(), png.to_str().unwrap().into(), "--tokens-out".into(), codes.to_str().unwrap().into()]);
        a
    };
    let (lp, lc, rp, rc) = (dir.join("two-local.png"), dir.join("two-local.json"), dir.join("two-remote.png"), dir.join("two-remote.json"));
    let mut a = region_args(&lp, &lc);
    a.extend(["--model".to_string(), model.to_str().unwrap().to_string()]);
    unmask(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let mut a = region_args(&rp, &rc);
    a.extend(remote.iter().map(|s| s.to_string()));
    unmask(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(codes_of(&lc), codes_of(&rc), "two-region codes local vs server");
    assert_ne!(codes_of(&lc), cases["inpaint"]["codes"], "the second region ran");
    assert_eq!(std::fs::read(&lp).unwrap(), std::fs::read(&rp).unwrap(), "two-region PNG local vs server");
}

#[test]
fn every_route_but_health_needs_the_token() {
    let s = server::start(None);
    let routes = [
        ("GET", "/v1/model"),
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("POST", "/v1/jobs/0123456789abcdef/cancel"),
        ("GET", "/v1/nowhere"),
        ("DELETE", "/v1/model"),
        ("GET", "/"),
    ];
    for (method, path) in routes {
        for token in [None, Some("wrong-token-0000000000"), Some(""), Some("test-token-0123456789abcdeX")] {
            let (code, body) = call(&s, method, path, token, None, Some(b"{}"));
            assert_eq!(code, 401, "{method} {path} with {token:?}: {body}");
            assert!(body.contains("token"), "{body}");
        }
    }
    let (code, body) = call(&s, "GET", "/health", None, None, None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"protocol\":2"), "{body}");
    let (code, body) = call(&s, "GET", "/v1/model", Some(TOKEN), None, None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"vocab\":398"), "{body}");
}

fn settings() -> serde_json::Value {
    serde_json::json!({ "steps": 3, "cfg": 4.0, "cfg_img": 0.0, "temperature": 0.0, "seed": 0, "cache": null })
}

fn generate(prompt: &str) -> serde_json::Value {
    serde_json::json!({ "task": "generate", "prompt": prompt, "width": 40, "height": 24, "settings": settings() })
}

fn with(mut v: serde_json::Value, path: &[&str], x: serde_json::Value) -> Vec<u8> {
    let mut at = &mut v;
    for p in &path[..path.len() - 1] {
        at = &mut at[*p];
    }
    at[*path.last().unwrap()] = x;
    serde_json::to_vec(&v).unwrap()
}

/// A valid PNG whose header says 9000 x 9000 (81 MP, over the server's 64 MP).
fn huge_png() -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, 9000, 9000);
    e.set_color(png::ColorType::Grayscale);
    e.set_depth(png::BitDepth::One);
    let mut w = e.write_header().unwrap();
    w.write_image_data(&vec![0u8; 1125 * 9000]).unwrap();
    w.finish().unwrap();
    out
}

#[test]
fn malformed_requests_get_a_4xx_with_a_message_and_the_server_keeps_serving() {
    let s = server::start(Some(1 << 20));
    let input = b64_file(&common::case("input.png"));
    let mask = b64_file(&common::case("mask.png"));
    let inpaint = serde_json::json!({
        "task": "inpaint", "prompt": "a red circle", "image": input, "mask": mask, "feather": 0.0, "settings": settings(),
    });
    let ask = serde_json::json!({
        "task": "ask", "question": "what color?", "image": input, "gen_length": 16,
        "settings": { "steps": 8, "block_length": 8, "temperature": 0.0, "seed": 0, "cache": false },
    });
    let png = std::fs::read(common::case("input.png")).unwrap();
    let small_mask = {
        let mut b = Vec::new();
        image::GrayImage::new(8, 8).write_to(&mut std::io::Cursor::new(&mut b), image::ImageFormat::Png).unwrap();
        b64(&b)
    };
    let g = generate("a red circle");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("not JSON", b"nope".to_vec(), 400),
        ("empty body", Vec::new(), 400),
        ("cut JSON", br#"{"task":"generate","prompt":"#.to_vec(), 400),
        ("a JSON array", b"[]".to_vec(), 422),
        ("no task", b"{}".to_vec(), 422),
        ("unknown task", br#"{"task":"paint"}"#.to_vec(), 422),
        ("no prompt", br#"{"task":"generate","width":40,"height":24}"#.to_vec(), 422),
        ("width a string", with(g.clone(), &["width"], "40".into()), 422),
        ("width negative", with(g.clone(), &["width"], (-40).into()), 422),
        ("unknown field", with(g.clone(), &["colour"], 1.into()), 422),
        ("unknown settings field", with(g.clone(), &["settings", "sampler"], "euler".into()), 422),
        ("width off the cells", with(g.clone(), &["width"], 41.into()), 400),
        ("width zero", with(g.clone(), &["width"], 0.into()), 400),
        ("width past the largest side", with(g.clone(), &["width"], 1_000_000.into()), 400),
        ("steps zero", with(g.clone(), &["settings", "steps"], 0.into()), 400),
        ("cfg out of range", with(g.clone(), &["settings", "cfg"], 1e9.into()), 400),
        ("prompt too long", with(g.clone(), &["prompt"], "x".repeat(5000).into()), 400),
        ("image not base64", with(inpaint.clone(), &["image"], "@@@@".into()), 400),
        ("image not an image", with(inpaint.clone(), &["image"], b64(b"hello, not a picture").into()), 400),
        ("image cut short", with(inpaint.clone(), &["image"], b64(&png[..png.len() / 2]).into()), 400),
        ("image over the pixel limit", with(inpaint.clone(), &["image"], b64(&huge_png()).into()), 400),
        ("mask of another size", with(inpaint.clone(), &["mask"], small_mask.into()), 400),
        ("feather negative", with(inpaint.clone(), &["feather"], (-1.0).into()), 400),
        ("content outside the image", with(inpaint.clone(), &["content"], serde_json::json!({"x": 30, "y": 0, "w": 20, "h": 24})), 400),
        ("codes of the wrong count", with(inpaint.clone(), &["codes"], serde_json::json!({"height": 6, "width": 10, "codes": [1, 2, 3]})), 400),
        ("codes outside the codebook", with(inpaint.clone(), &["codes"], serde_json::json!({"height": 6, "width": 10, "codes": vec![999; 60]})), 400),
        ("answer length zero", with(ask.clone(), &["gen_length"], 0.into()), 400),
        ("block not a divisor", with(ask.clone(), &["settings", "block_length"], 5.into()), 400),
    ];
    assert!(cases.len() >= 20);
    for (what, body, want) in &cases {
        let (code, text) = call(&s, "POST", "/v1/jobs", Some(TOKEN), Some("tester"), Some(body));
        assert_eq!(code, *want, "{what}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not a JSON error: {text}"));
        assert!(v["error"].as_str().is_some_and(|m| m.len() > 10), "{what}: {text}");
    }
    // a body over the limit is refused from its Content-Length, unread (the
    // client waits for `100 Continue`, which never comes)
    let big = with(g.clone(), &["prompt"], "y".repeat(2 << 20).into());
    let (code, text) = raw_post(&s, &big);
    assert_eq!(code, 413, "{text}");
    assert!(text.contains("size limit"), "{text}");
    for (what, method, path, client, want) in [
        ("unknown job id", "POST", "/v1/jobs/ffffffffffffffff/cancel", "tester", 404),
        ("a bad client header", "GET", "/v1/jobs", "no spaces allowed", 400),
        ("an unknown route", "GET", "/v1/everything", "tester", 404),
        ("the wrong method", "PUT", "/v1/jobs", "tester", 405),
    ] {
        let (code, text) = call(&s, method, path, Some(TOKEN), Some(client), Some(b""));
        assert_eq!(code, want, "{what}: {text}");
        assert!(text.contains("\"error\""), "{what}: {text}");
    }
    // still serving: a valid job runs to the end
    let client = Client::new(&server::url(&s), TOKEN).unwrap();
    let job = Job::Generate { prompt: "a red circle".into(), width: 40, height: 24, settings: small_settings(3, 0) };
    assert!(matches!(client.run(&job, PreviewOptions::default(), &mut |_| true).unwrap(), Output::Image { .. }));
    // a job the budget refuses fails alone, as an event; the next one runs
    let huge = Job::Generate { prompt: "a red circle".into(), width: 16384, height: 16384, settings: small_settings(3, 0) };
    let err = client.run(&huge, PreviewOptions::default(), &mut |_| true).unwrap_err().to_string();
    assert!(err.contains("16384"), "{err}");
    assert!(client.run(&job, PreviewOptions::default(), &mut |_| true).is_ok());
}

/// POSTs the headers of `body` over a plain socket with `Expect:
/// 100-continue`, and the body only if the server asks for it; returns the
/// status and the response text.
fn raw_post(s: &unmask::remote::Server, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut t = std::net::TcpStream::connect(s.addr).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /v1/jobs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
        body.len()
    );
    t.write_all(head.as_bytes()).unwrap();
    let mut out = vec![0u8; 64 << 10];
    let n = t.read(&mut out).unwrap_or(0);
    out.truncate(n);
    if out.starts_with(b"HTTP/1.1 100") {
        t.write_all(body).unwrap();
        out.clear();
        let _ = t.read_to_end(&mut out);
    } else {
        let _ = t.read_to_end(&mut out);
    }
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text)
}

fn small_settings(steps: usize, seed: u64) -> ImageSettings {
    ImageSettings { steps, cfg: 4.0, cfg_img: 0.0, temperature: 0.0, seed, cache: None }
}

/// A job that runs for a few seconds on the fixture model (256 x 256, 48 steps).
fn slow_job() -> Job {
    Job::Generate { prompt: "a slow one".into(), width: 256, height: 256, settings: small_settings(48, 0) }
}

#[test]
fn a_client_sees_and_cancels_only_its_own_jobs() {
    let s = server::start(None);
    let a = Client::new(&server::url(&s), TOKEN).unwrap();
    let b = Client::new(&server::url(&s), TOKEN).unwrap();
    let mut stream = a.submit(&slow_job(), PreviewOptions { every: None, ..Default::default() }).unwrap();
    let id = match stream.next().unwrap() {
        Some(WireEvent::Queued { job, position }) => {
            assert_eq!(position, 0);
            job
        }
        other => panic!("first event: {other:?}"),
    };
    assert_eq!(a.jobs().unwrap().len(), 1);
    assert!(b.jobs().unwrap().is_empty(), "b sees a's job");
    let err = b.cancel(&id).unwrap_err().to_string();
    assert!(err.contains("404") && err.contains(&id), "{err}");
    // a's job goes on: its next event is not a cancellation
    let next = stream.next().unwrap().unwrap();
    assert!(matches!(next, WireEvent::Started { .. } | WireEvent::Progress { .. }), "{next:?}");
    a.cancel(&id).unwrap();
    let mut last = None;
    while let Some(e) = stream.next().unwrap() {
        last = Some(e);
    }
    assert!(matches!(last, Some(WireEvent::Cancelled { .. })), "{last:?}");
    eventually(10, "an empty queue", || queued(&s) == 0);
}

#[test]
fn a_client_that_vanishes_frees_the_queue() {
    let s = server::start(None);
    let url = server::url(&s);
    // a CLI client killed mid-run
    let dir = common::scratch("server-killed");
    let out = dir.join("never.png");
    let mut child = Command::new(env!("CARGO_BIN_EXE_unmask"))
        .args(["generate", "--server", &url, "--token", TOKEN, "--prompt", "a slow one", "--width", "256", "--height", "256"])
        .args(["--steps", "48", "--temperature", "0", "--seed", "0", "--out", out.to_str().unwrap()])
        .spawn()
        .unwrap();
    eventually(30, "the CLI's job running", || queued(&s) == 1);
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    let _ = child.wait();
    let killed = Instant::now();
    eventually(10, "the killed client's job cancelled", || queued(&s) == 0);
    eprintln!("queue free {} ms after the client was killed", killed.elapsed().as_millis());
    assert!(!out.exists(), "a cancelled job wrote its output");

    // a client with a running job and two queued ones drops all three streams
    let c = Client::new(&url, TOKEN).unwrap();
    let streams: Vec<_> = (0..3).map(|_| c.submit(&slow_job(), PreviewOptions::default()).unwrap()).collect();
    eventually(30, "three jobs queued", || queued(&s) == 3);
    drop(streams);
    eventually(10, "all three cancelled", || queued(&s) == 0);
    // and the server serves the next one
    let job = Job::Generate { prompt: "after".into(), width: 40, height: 24, settings: small_settings(3, 0) };
    assert!(c.run(&job, PreviewOptions::default(), &mut |_| true).is_ok());
}

#[test]
fn queued_jobs_are_told_their_place_and_raw_sse_works() {
    let s = server::start(None);
    let c = Client::new(&server::url(&s), TOKEN).unwrap();
    let mut streams: Vec<_> = (0..3).map(|_| c.submit(&slow_job(), PreviewOptions::default()).unwrap()).collect();
    for (i, st) in streams.iter_mut().enumerate() {
        match st.next().unwrap() {
            Some(WireEvent::Queued { position, .. }) => assert_eq!(position, i),
            other => panic!("job {i}: {other:?}"),
        }
    }
    let jobs = c.jobs().unwrap();
    assert_eq!(jobs.iter().map(|j| j.state.as_str()).collect::<Vec<_>>(), ["running", "queued", "queued"], "{jobs:?}");
    // the running one is cancelled: the second starts, the third moves up and is told so
    c.cancel(&jobs[0].job).unwrap();
    match streams[2].next().unwrap() {
        Some(WireEvent::Queued { position: 1, .. }) => {}
        other => panic!("expected the third job to move up: {other:?}"),
    }
    drop(streams);
    eventually(10, "an empty queue", || queued(&s) == 0);
    // what a curl user reads: `data:` lines of JSON, ending with `finished`
    let (code, text) = call(&s, "POST", "/v1/jobs", Some(TOKEN), None, Some(&serde_json::to_vec(&generate("curl")).unwrap()));
    assert_eq!(code, 200);
    let types: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<serde_json::Value>(d).unwrap()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("queued"), "{types:?}");
    assert_eq!(types.last().map(String::as_str), Some("finished"), "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "progress").count(), 3, "{types:?}");
}

/// 16 clients x 4 jobs: every job finishes with the codes a local run gives
/// its seed, and its stream holds every step, in order, once.
#[test]
fn load_16_clients_x_4_jobs_lose_no_event() {
    // 16 clients on one address: over the default cap of 8 per address
    let s = server::start_config(|c| c.max_connections_per_client = 64);
    let url = server::url(&s);
    let worker_codes = local_codes(&(0..4).collect::<Vec<_>>());
    let started = Instant::now();
    let threads: Vec<_> = (0..16)
        .map(|k| {
            let url = url.clone();
            std::thread::spawn(move || {
                let c = Client::new(&url, TOKEN).unwrap();
                let mut out = Vec::new();
                for j in 0..4u64 {
                    let job = Job::Generate { prompt: "a red circle on the left".into(), width: 40, height: 24, settings: small_settings(6, j) };
                    let t = Instant::now();
                    let mut steps = Vec::new();
                    let mut kinds = Vec::new();
                    let r = c.run(&job, PreviewOptions { every: Some(Duration::ZERO), ..Default::default() }, &mut |e| {
                        kinds.push(match e {
                            WireEvent::Queued { .. } => 'q',
                            WireEvent::Started { .. } => 's',
                            WireEvent::Progress { step, .. } => {
                                steps.push(*step);
                                'p'
                            }
                            WireEvent::Finished { .. } => 'f',
                            _ => '?',
                        });
                        true
                    });
                    let Ok(Output::Image { codes: Some(codes), .. }) = r else { panic!("client {k} job {j}: {:?}", r.err()) };
                    out.push((j, codes.codes, steps, kinds.into_iter().collect::<String>(), t.elapsed()));
                }
                out
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in threads {
        for (seed, codes, steps, kinds, latency) in t.join().unwrap() {
            assert_eq!(codes, worker_codes[seed as usize], "seed {seed}: codes differ from a local run");
            assert_eq!(steps, (0..6).collect::<Vec<_>>(), "every step once, in order");
            let body = kinds.trim_start_matches('q');
            assert!(kinds.starts_with('q') && body == "sppppppf", "event order {kinds}");
            latencies.push(latency);
        }
    }
    let wall = started.elapsed();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    eprintln!(
        "load: 64 jobs in {:.2} s = {:.1} jobs/s; latency p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        wall.as_secs_f64(),
        64.0 / wall.as_secs_f64(),
        p(0.5),
        p(0.95),
        p(1.0)
    );
    assert_eq!(latencies.len(), 64);
    eventually(10, "an empty queue", || queued(&s) == 0);
}

/// The codes the in-process worker gives each seed (the reference of the load test).
fn local_codes(seeds: &[u64]) -> Vec<Vec<u32>> {
    let mut w = unmask::worker::Worker::spawn();
    w.load(common::fixture_model(), unmask::DeviceChoice::Cpu);
    seeds
        .iter()
        .map(|&seed| {
            let job = Job::Generate { prompt: "a red circle on the left".into(), width: 40, height: 24, settings: small_settings(6, seed) };
            let id = w.submit(job, PreviewOptions::default());
            loop {
                match w.events().recv_timeout(Duration::from_secs(60)).unwrap() {
                    unmask::worker::Event::Finished { id: i, output, .. } if i == id => match *output {
                        Output::Image { codes: Some(c), .. } => break c.codes,
                        _ => panic!(),
                    },
                    unmask::worker::Event::Failed { message, .. } => panic!("{message}"),
                    _ => {}
                }
            }
        })
        .collect()
}

// ---- slow and numerous clients ------------------------------------------

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// Reads until the server closes the connection (EOF or reset); returns what
/// came, or None if it is still open after `secs`.
fn read_until_closed(t: &mut TcpStream, secs: u64) -> Option<String> {
    t.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let until = Instant::now() + Duration::from_secs(secs);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        match t.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&out).to_string()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Some(String::from_utf8_lossy(&out).to_string()),
        }
    }
    None
}

/// A client that sends one header line every 200 ms and never ends them;
/// returns how long the server kept it.
fn trickle_headers(addr: SocketAddr) -> Duration {
    let t0 = Instant::now();
    let mut t = TcpStream::connect(addr).unwrap();
    t.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    t.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n").unwrap();
    let mut buf = [0u8; 1024];
    for i in 0.. {
        assert!(t0.elapsed() < Duration::from_secs(30), "a trickling client kept for 30 s");
        if t.write_all(format!("x-slow-{i}: 1\r\n").as_bytes()).is_err() {
            break;
        }
        match t.read(&mut buf) {
            Ok(_) => break, // EOF (or an answer, which ends it too)
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    t0.elapsed()
}

/// A client that announces a body and never sends it; returns the answer
/// and how long the server kept it.
fn announce_body(addr: SocketAddr) -> (String, Duration) {
    let t0 = Instant::now();
    let mut t = TcpStream::connect(addr).unwrap();
    let head = format!("POST /v1/jobs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{{\"task\"");
    t.write_all(head.as_bytes()).unwrap();
    let answer = read_until_closed(&mut t, 30).expect("a client that never sends its body kept for 30 s");
    (answer, t0.elapsed())
}

#[test]
fn slow_clients_are_cut_within_the_limits_and_others_are_served_meanwhile() {
    let limit = Duration::from_secs(1);
    let s = server::start_config(|c| {
        c.header_timeout = limit;
        c.body_timeout = limit;
    });
    let addr = s.addr;
    let started = Instant::now();
    let trickler = std::thread::spawn(move || trickle_headers(addr));
    let announcer = std::thread::spawn(move || announce_body(addr));
    let silent = std::thread::spawn(move || {
        let t0 = Instant::now();
        let mut t = TcpStream::connect(addr).unwrap();
        read_until_closed(&mut t, 30).expect("a silent client kept for 30 s");
        t0.elapsed()
    });
    // meanwhile, others are served at once
    std::thread::sleep(Duration::from_millis(200));
    let (code, body) = call(&s, "GET", "/health", None, None, None);
    assert_eq!(code, 200, "{body}");
    let (code, body) = call(&s, "GET", "/v1/model", Some(TOKEN), None, None);
    assert_eq!(code, 200, "{body}");
    let served = started.elapsed();
    assert!(served < limit, "others waited {served:?} behind the slow clients");
    let client = Client::new(&server::url(&s), TOKEN).unwrap();
    let job = Job::Generate { prompt: "meanwhile".into(), width: 40, height: 24, settings: small_settings(3, 0) };
    assert!(matches!(client.run(&job, PreviewOptions::default(), &mut |_| true).unwrap(), Output::Image { .. }));

    let slack = Duration::from_millis(1500);
    let kept = trickler.join().unwrap();
    eprintln!("trickling headers: cut after {kept:?}");
    assert!(kept >= limit - Duration::from_millis(100) && kept < limit + slack, "trickling headers kept {kept:?}");
    let kept = silent.join().unwrap();
    eprintln!("silent: cut after {kept:?}");
    assert!(kept >= limit - Duration::from_millis(100) && kept < limit + slack, "a silent client kept {kept:?}");
    let (answer, kept) = announcer.join().unwrap();
    eprintln!("announced body: cut after {kept:?}");
    assert!(kept >= limit - Duration::from_millis(100) && kept < limit + slack, "a body never sent kept {kept:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--body-timeout"), "{answer}");

    // the client's kept-alive connection, idle past the header limit, is
    // closed quietly: not counted as a slow client
    std::thread::sleep(limit + Duration::from_millis(500));
    assert!(client.run(&job, PreviewOptions::default(), &mut |_| true).is_ok());
    assert_eq!(s.cuts(), unmask::remote::server::Cuts { slow_headers: 2, slow_bodies: 1, ..Default::default() });
}

#[test]
fn event_streams_outlive_the_request_limits() {
    // a keep-alive longer than the limits: a queued job's stream is silent past them
    let s = server::start_config(|c| {
        c.header_timeout = Duration::from_secs(1);
        c.body_timeout = Duration::from_secs(1);
        c.keep_alive = Duration::from_secs(3);
    });
    let url = server::url(&s);
    let t0 = Instant::now();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let c = Client::new(&url, TOKEN).unwrap();
                // a few seconds each here (slow_job takes minutes on a busy 2-core box)
                let job = Job::Generate { prompt: "a streamed one".into(), width: 96, height: 96, settings: small_settings(64, 0) };
                c.run(&job, PreviewOptions { every: None, ..Default::default() }, &mut |_| true)
            })
        })
        .collect();
    for r in runs {
        assert!(matches!(r.join().unwrap(), Ok(Output::Image { .. })));
    }
    let took = t0.elapsed();
    eprintln!("two slow jobs streamed for {took:?} under 1 s request limits");
    assert!(took > Duration::from_secs(2), "the jobs were too quick to show anything: {took:?}");
    assert_eq!(s.cuts(), Default::default());
}

/// A connection from `ip` (any 127.x.y.z on Linux) to `addr`.
fn connect_from(ip: &str, addr: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{ip}:0").parse().unwrap()).unwrap();
        let t = sock.connect(addr).await.unwrap();
        let t = t.into_std().unwrap();
        t.set_nonblocking(false).unwrap();
        t
    })
}

/// GET /health on `t`, kept alive; the status.
fn health_on(t: &mut TcpStream) -> u16 {
    t.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 1024];
    let n = t.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn connections_over_the_caps_are_refused_and_counted() {
    let s = server::start_config(|c| {
        c.max_connections_per_client = 2;
        c.max_connections = 3;
    });
    let addr = s.addr;
    let mut a1 = connect_from("127.0.0.1", addr);
    let mut a2 = connect_from("127.0.0.1", addr);
    assert_eq!(health_on(&mut a1), 200);
    assert_eq!(health_on(&mut a2), 200);
    // a third from the same address: 503, closed
    let mut a3 = connect_from("127.0.0.1", addr);
    let answer = read_until_closed(&mut a3, 5).expect("a connection over the cap kept open");
    assert!(answer.starts_with("HTTP/1.1 503") && answer.contains("--max-connections-per-client"), "{answer}");
    // another address still gets in, up to the cap in all
    let mut b1 = connect_from("127.0.0.2", addr);
    assert_eq!(health_on(&mut b1), 200);
    let mut b2 = connect_from("127.0.0.2", addr);
    let answer = read_until_closed(&mut b2, 5).expect("a connection over the total cap kept open");
    assert!(answer.starts_with("HTTP/1.1 503") && answer.contains("--max-connections)"), "{answer}");
    // a request sent at once is read and dropped: the 503 arrives, not a reset
    let mut a4 = connect_from("127.0.0.1", addr);
    a4.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let answer = read_until_closed(&mut a4, 5).expect("kept open");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert_eq!(s.cuts(), unmask::remote::server::Cuts { over_client_cap: 2, over_total_cap: 1, ..Default::default() });
    // a closed connection gives its place back
    drop(a1);
    eventually(10, "a place given back", || health_on(&mut connect_from("127.0.0.1", addr)) == 200);
    assert_eq!(health_on(&mut a2), 200, "the open ones are still served");
}

/// `unmask serve`'s flags set the limits, and each cut is a line on stderr.
#[test]
fn serve_flags_set_the_limits_and_cuts_are_logged() {
    use std::io::BufRead;
    let model = common::fixture_model();
    let mut child = Command::new(env!("CARGO_BIN_EXE_unmask"))
        .args(["serve", "--model", model.to_str().unwrap(), "--device", "cpu", "--listen", "127.0.0.1:0", "--token", TOKEN])
        .args(["--header-timeout", "1", "--body-timeout", "1", "--max-connections-per-client", "1", "--max-connections", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: SocketAddr = line.trim().strip_prefix("http://").unwrap_or_else(|| panic!("first line: {line}")).parse().unwrap();
    // a silent connection holds the one place; a second is refused
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut second = TcpStream::connect(addr).unwrap();
    let answer = read_until_closed(&mut second, 5).expect("the second connection kept open");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    read_until_closed(&mut silent, 10).expect("the silent connection kept past --header-timeout 1");
    let (answer, kept) = announce_body(addr);
    assert!(answer.starts_with("HTTP/1.1 408") && kept < Duration::from_secs(3), "{answer} after {kept:?}");
    child.kill().unwrap();
    let _ = child.wait();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    for want in [
        "serve: refused a connection from 127.0.0.1: 1 open from that address already (--max-connections-per-client; 1 refused so far)",
        "serve: closed a connection from 127.0.0.1: its request headers took over 1 s (1 so far)",
        "serve: closed a connection from 127.0.0.1: its request body took over 1 s, answered 408 (1 so far)",
    ] {
        assert!(err.lines().any(|l| l == want), "no line {want:?} in:\n{err}");
    }
    assert!(Command::new(env!("CARGO_BIN_EXE_unmask")).args(["serve", "--header-timeout", "0", "--token", TOKEN]).output().is_ok_and(|o| {
        let e = String::from_utf8_lossy(&o.stderr).to_string();
        !o.status.success() && e.contains("--header-timeout")
    }));
}
