//! Where a task runs: the model loaded here, or `unmask serve` elsewhere
//! (`--server`). Both take the same `Job` and give the same `Output`.

use std::path::PathBuf;

use unmask::bundle::default_model_dir;
use unmask::engine::{DeviceChoice, Engine, ModelInfo};
use unmask::error::{Error, Result};
use unmask::remote::protocol::WireEvent;
use unmask::remote::Client;
use unmask::tasks::{self, Job, Output};
use unmask::worker::PreviewOptions;

use crate::args::{ModelArgs, RemoteArgs};
use crate::progress::Bar;

pub enum Runner {
    Local(Box<Engine>),
    Remote { client: Client, info: Box<ModelInfo> },
}

impl Runner {
    pub fn open(model: &ModelArgs, remote: &RemoteArgs) -> Result<Self> {
        let Some(url) = &remote.server else {
            if remote.token.is_some() || remote.token_file.is_some() {
                return Err(Error::invalid("--token and --token-file are for --server: add --server URL, or drop them to run here"));
            }
            return Ok(Runner::Local(Box::new(load(model)?)));
        };
        if model.model.is_some() {
            return Err(Error::invalid("--model and --server: with --server the server's model runs; drop one of them"));
        }
        let token = match (&remote.token, &remote.token_file) {
            (Some(t), None) => t.clone(),
            (None, Some(f)) => unmask::input::read_text_capped(f, 4096, "--token-file")?.lines().next().unwrap_or("").trim().to_string(),
            (None, None) => std::env::var("UNMASK_TOKEN").map_err(|_| {
                Error::invalid("--server needs the server's token: --token T, --token-file F, or UNMASK_TOKEN (printed by `unmask serve` when it starts)")
            })?,
            (Some(_), Some(_)) => return Err(Error::invalid("--token and --token-file: give one of them")),
        };
        let client = Client::new(url, &token)?;
        let info = client.info()?.model;
        eprintln!("server {}: {} on {}", client.url(), info.name, info.device);
        Ok(Runner::Remote { client, info: Box::new(info) })
    }

    pub fn info(&self) -> &ModelInfo {
        match self {
            Runner::Local(e) => &e.info,
            Runner::Remote { info, .. } => info,
        }
    }

    /// The engine, when the model runs here (checks that need it run then;
    /// a server runs them itself).
    pub fn engine(&self) -> Option<&Engine> {
        match self {
            Runner::Local(e) => Some(e),
            Runner::Remote { .. } => None,
        }
    }

    pub fn run(&self, job: &Job, bar: &mut Bar) -> Result<Output> {
        match self {
            Runner::Local(e) => tasks::run(e, job, bar),
            Runner::Remote { client, .. } => {
                let preview = PreviewOptions { every: None, ..Default::default() };
                client.run(job, preview, &mut |e| {
                    match e {
                        WireEvent::Queued { position, .. } if *position > 0 => bar.bar.set_message(format!("queued ({position} ahead)")),
                        WireEvent::Started { kind, .. } => bar.bar.set_message(kind.clone()),
                        WireEvent::Progress { step, .. } | WireEvent::Answer { step, .. } => bar.bar.set_position(*step as u64 + 1),
                        _ => {}
                    }
                    true
                })
            }
        }
    }
}

pub fn device(m: &ModelArgs) -> Result<DeviceChoice> {
    match m.device.as_str() {
        "auto" => Ok(DeviceChoice::Auto),
        "cpu" => Ok(DeviceChoice::Cpu),
        "cuda" => Ok(DeviceChoice::Cuda(0)),
        other => Err(Error::invalid(format!("--device {other}: use cpu, cuda or auto"))),
    }
}

pub fn model_dir(m: &ModelArgs) -> Result<PathBuf> {
    match &m.model {
        Some(p) => Ok(p.clone()),
        None => default_model_dir()
            .ok_or_else(|| Error::invalid("no --model given and the embedded model was not found: pass --model DIR")),
    }
}

pub fn load(m: &ModelArgs) -> Result<Engine> {
    Engine::load(model_dir(m)?, device(m)?)
}
