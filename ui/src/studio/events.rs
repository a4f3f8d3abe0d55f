//! The worker's events drained into the state once a frame: progress and
//! previews, answers, results, failures; and the settings written when
//! they changed.

use std::time::{Duration, Instant};

use unmask::tasks::Output;
use unmask::worker::{Event, JobId};

use super::{ChatTurn, ModelStatus, NoticeKind, RunKind, Studio};
use crate::document::Version;

impl Studio {
    /// Drains the worker's events into the state. Call once per frame.
    pub fn poll(&mut self) {
        while let Some(e) = self.worker.try_recv() {
            self.handle(e);
        }
        if let Some(dir) = self.download.as_mut().and_then(|d| d.poll()) {
            self.notify("Model downloaded", &format!("{} is complete and verified; loading it", dir.display()), false);
            self.known_models = None;
            self.load_model(&dir);
        }
        self.persist_settings();
        // never mid-stroke: each segment changes the mask
        if !self.view.stroke_active() {
            self.save_session();
        }
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Loading { .. } | Event::Loaded(_) | Event::LoadFailed { .. } => self.handle_model(e),
            Event::Started { .. } => {}
            Event::Progress { id, step, total, preview, preview_at, preview_region, .. } => {
                if let Some(run) = self.run.as_mut().filter(|r| r.jobs.iter().any(|j| j.0 == id)) {
                    run.step = step + 1;
                    run.total = total;
                    run.progress_events += 1;
                    if let Some(p) = preview {
                        // a preview of another crop: the last one of the crop before stays up
                        if let (Some(old_at), Some(old)) = (run.preview_at, run.preview.take()) {
                            if Some(old_at) != preview_at {
                                run.done_crops.retain(|(r, ..)| *r != old_at);
                                run.done_crops.push((old_at, old, run.preview_region.take()));
                            }
                        }
                        run.preview = Some(p);
                        run.preview_at = preview_at;
                        run.preview_region = preview_region;
                        run.preview_revision += 1;
                    }
                }
            }
            Event::Answer { text, .. } => {
                if let Some(t) = self.run_chat() {
                    t.answer = text;
                }
                if let Some(run) = self.run.as_mut() {
                    run.step += 1;
                    run.progress_events += 1;
                }
            }
            Event::Finished { id, output, .. } => self.finish(id, *output),
            Event::Failed { id, message } => {
                // one notice per run: its variants often fail alike (a job the engine refuses)
                let counted = self.run.as_mut().filter(|r| r.jobs.iter().any(|j| j.0 == id)).map(|run| {
                    run.failed += 1;
                    (run.failed, run.jobs.len(), run.serial)
                });
                self.end_job(id);
                let (title, serial) = match counted {
                    Some((failed, of, serial)) if of > 1 => (format!("The run failed ({failed} of {of} variants)"), Some(serial)),
                    other => ("The run failed".to_string(), other.map(|c| c.2)),
                };
                self.notify_as(NoticeKind::RunFailed, serial, &title, &message, true);
            }
            Event::Cancelled { id } => {
                self.end_job(id);
                if self.run.is_none() {
                    self.notify_as(NoticeKind::Cancelled, None, "Cancelled", "the canvas is as it was before the run", false);
                }
            }
        }
    }

    /// Counts a job as done; ends the run after its last job.
    fn end_job(&mut self, id: JobId) {
        let Some(run) = self.run.as_mut() else { return };
        if !run.jobs.iter().any(|j| j.0 == id) {
            return;
        }
        run.finished += 1;
        run.step = 0;
        if run.finished >= run.jobs.len() {
            let (kind, doc_id) = (run.kind, run.doc_id);
            self.run = None;
            if kind == RunKind::Describe {
                // cancelled or failed: nothing more is asked
                self.describing = None;
            }
            if kind == RunKind::Ask {
                if let Some(t) = self.chat_of(doc_id) {
                    t.done = true;
                }
            }
            // a single result is applied at once; several wait for a pick
            if self.variants.len() == 1 {
                self.pick_variant(0);
            }
        }
    }

    fn finish(&mut self, id: JobId, output: Output) {
        let seed = self.run.as_ref().and_then(|r| r.jobs.iter().find(|j| j.0 == id)).map(|j| j.1);
        if let Some(serial) = self.run.as_ref().filter(|_| seed.is_some()).map(|r| r.serial) {
            self.clear_stale_run_notices(serial);
        }
        match output {
            Output::Image { image, codes, parameters, .. } => {
                let label = match self.run.as_ref().map(|r| r.kind) {
                    Some(RunKind::Sketch) => "sketch",
                    Some(RunKind::Edit) => "edit",
                    // an extended canvas's fill says so in the strip as its parameters do
                    _ if parameters.contains("\nTask: outpaint,") => "outpaint",
                    _ => "retouch",
                };
                self.variants_doc = self.run.as_ref().and_then(|r| r.doc_id);
                self.variants.push(Version {
                    image,
                    codes,
                    label: format!("{label} #{}", seed.unwrap_or(0)),
                    parameters: Some(parameters),
                    seed,
                    content: None,
                });
            }
            Output::Answer { text, .. } if self.run.as_ref().is_some_and(|r| r.kind == RunKind::Describe) => {
                if self.describe_answer(text) {
                    // the next question runs in the same run
                    return;
                }
            }
            Output::Answer { text, .. } => {
                if let Some(t) = self.run_chat() {
                    t.answer = text;
                    t.done = true;
                    t.answered = true;
                }
            }
        }
        self.end_job(id);
    }

    /// The last question of the running Ask run's document.
    fn run_chat(&mut self) -> Option<&mut ChatTurn> {
        let doc_id = self.run.as_ref().filter(|r| r.kind == RunKind::Ask)?.doc_id;
        self.chat_of(doc_id)
    }

    /// The last question asked about document `doc_id`: the open document's
    /// history is `chat`, a tab's is its own (answers never land on another image).
    fn chat_of(&mut self, doc_id: Option<u64>) -> Option<&mut ChatTurn> {
        if self.doc.as_ref().map(|d| d.id) == doc_id {
            return self.chat.last_mut();
        }
        self.background.iter_mut().find(|d| Some(d.id) == doc_id)?.chat.last_mut()
    }

    /// Writes settings when they changed (cheap compare, once per frame).
    fn persist_settings(&mut self) {
        if self.settings != self.saved_settings {
            if let Some(p) = &self.settings_path {
                let _ = self.settings.save(p);
            }
            self.saved_settings = self.settings.clone();
        }
    }

    /// Waits (for tests and scripts) until no run is in progress or `timeout` passes.
    pub fn wait_idle(&mut self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(e) = self.worker.events().recv_timeout(Duration::from_millis(20)) {
                self.handle(e);
            }
            if self.run.is_none() && !matches!(self.model, ModelStatus::Loading(_)) {
                return true;
            }
        }
        false
    }
}
