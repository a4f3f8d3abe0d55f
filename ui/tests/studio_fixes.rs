//! What a user trying the Studio on real photos found (issue 31): the close
//! question saved the wrong document, notices piled up, file dialogs did
//! nothing without a portal, the Ask history was shared by all documents,
//! two figures for the model's size, the empty-prompt refusal hid its
//! reason, and Sketch shared Retouch's prompt. Driven through egui_kittest
//! on the fixture model, as `tests/studio.rs`.

use std::time::Duration;

mod common;

use common::studio_fixes::{labels_with, menu, png, press_close_button, sent, sent_within};
use common::until;
use egui::ViewportCommand;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use unmask_studio::document::Version;
use unmask_studio::{Mode, PathKind, Studio, StudioOptions};

fn harness(s: Studio) -> Harness<'static, Studio> {
    common::harness(s, 1200.0, 760.0)
}

/// Runs the current mode's job to its end.
fn run(h: &mut Harness<'static, Studio>) {
    h.state_mut().start();
    h.step();
    until(h, "the run", |s| !s.is_running());
}

#[test]
fn the_close_question_names_every_unsaved_document_and_saves_exactly_those() {
    let dir = common::scratch("fix-close");
    let (a, _) = png(&dir, "a.png", 10);
    let (b, _) = png(&dir, "b.png", 200);
    let mut s = common::fixture_studio(None);
    // a: a photo with a new version, waiting in its tab
    assert!(s.open_path(&a));
    let edited = image::RgbImage::from_pixel(40, 24, image::Rgb([1, 2, 3]));
    s.doc.as_mut().unwrap().add_version(Version::new(edited.clone(), "edit"));
    // b: open, unchanged
    assert!(s.open_path(&b));
    // a sketch: never saved, the open document
    s.set_mode(Mode::Sketch);
    s.prompt = "a red circle".into();
    s.settings.sketch_width = 32;
    s.settings.sketch_height = 32;
    let mut h = harness(s);
    run(&mut h);
    assert_eq!(h.state().tabs().len(), 3, "{:?}", h.state().notices);
    assert!(h.state().doc.as_ref().unwrap().path.is_none(), "the sketch is the open document");

    press_close_button(&mut h);
    assert!(sent(&h, &ViewportCommand::CancelClose), "the close waits for the answer");
    h.run_steps(2);
    assert_eq!(labels_with(&h, "a.png  (changed since it was opened)").len(), 1);
    assert_eq!(labels_with(&h, "sketch #3  (never saved)").len(), 1);
    assert!(labels_with(&h, "b.png  (").is_empty(), "the saved document is not listed");
    assert!(labels_with(&h, "The image has unsaved changes").is_empty());

    h.get_by_label("Save all").click();
    h.run_steps(1);
    assert!(sent_within(&mut h, &ViewportCommand::Close, 3), "everything saved: the window closes");
    let st = h.state();
    assert!(st.allow_close && st.close_prompt.is_none());
    assert!(!st.has_unsaved_changes(), "{:?}", st.notices);
    // exactly the two unsaved ones, the photo's beside it and never over it
    let mut written: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    written.sort();
    assert_eq!(written, ["a-unmask.png", "a.png", "b.png", "sketch-3.png"]);
    assert_eq!(unmask::image_io::open_rgb(&dir.join("a-unmask.png")).unwrap(), edited);
    let sketch = st.documents().find(|d| d.title() == "sketch-3.png").expect("the sketch is now that file");
    assert_eq!(&unmask::image_io::open_rgb(&dir.join("sketch-3.png")).unwrap(), sketch.image());
}

#[test]
fn quit_asks_the_same_question_and_cancel_keeps_the_app_open() {
    let mut s = common::fixture_studio(None);
    let mut h = harness({
        s.doc.as_mut().unwrap().dirty = true;
        s
    });
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Q);
    h.run_steps(2);
    assert_eq!(h.state().close_prompt.as_ref().map(|c| c.targets.len()), Some(1));
    assert!(!labels_with(&h, "input.png  (changed since it was opened)").is_empty());
    h.get_by_label("Cancel").click();
    h.run_steps(3);
    let st = h.state();
    assert!(st.close_prompt.is_none() && !st.allow_close && st.has_unsaved_changes());
    assert!(!sent(&h, &ViewportCommand::Close));
    // with nothing unsaved, File > Quit closes at once
    h.state_mut().doc.as_mut().unwrap().dirty = false;
    menu(&mut h, "File", "Quit  (Ctrl+Q)");
    assert!(sent_within(&mut h, &ViewportCommand::Close, 3));
}

#[test]
fn a_failing_run_of_eight_variants_is_one_notice_and_a_success_clears_it() {
    let mut s = common::fixture_studio(None);
    s.set_mode(Mode::Sketch);
    let mut h = harness(s);
    // refused: nothing typed
    h.get_by_label("Run sketch").click();
    h.run_steps(2);
    assert_eq!(h.state().notices.len(), 1);
    // eight variants the engine refuses (far more cells than a layout holds)
    let st = h.state_mut();
    st.prompt = "a red circle".into();
    st.settings.variants = 8;
    (st.settings.sketch_width, st.settings.sketch_height) = (4096, 4096);
    for _ in 0..2 {
        run(&mut h);
        let failed: Vec<_> = h.state().notices.iter().filter(|n| n.title.starts_with("The run failed")).collect();
        assert_eq!(failed.len(), 1, "one notice per failing run, the newer replacing the older: {:?}", h.state().notices);
        assert!(failed[0].title.contains("8 of 8 variants"), "{:?}", failed[0]);
    }
    h.run_steps(2);
    assert!(h.query_by_label("Dismiss all").is_some(), "several notices: one button dismisses them");
    // a run that works: the stale refusal and failure go
    let st = h.state_mut();
    st.settings.variants = 1;
    (st.settings.sketch_width, st.settings.sketch_height) = (32, 32);
    run(&mut h);
    assert!(h.state().notices.iter().all(|n| !n.is_error), "{:?}", h.state().notices);
    h.state_mut().notify("one", "", false);
    h.state_mut().notify("two", "", false);
    h.run_steps(2);
    h.get_by_label("Dismiss all").click();
    h.run_steps(2);
    assert!(h.state().notices.is_empty());
}

#[test]
fn enter_in_the_path_field_saves_as_ok_does() {
    let dir = common::scratch("fix-path-enter");
    let mut s = common::fixture_studio(None);
    s.no_file_dialog = Some("none here".into());
    let mut h = harness(s);
    menu(&mut h, "File", "Save PNG...  (Ctrl+S)");
    h.run_steps(3);
    let target = dir.join("by-enter.png");
    h.state_mut().path_prompt.as_mut().unwrap().text = target.display().to_string();
    h.run_steps(2);
    // the field has the focus (it takes it when the window opens): Enter as a person presses it
    h.event(egui::Event::Key { key: egui::Key::Enter, physical_key: None, pressed: true, repeat: false, modifiers: Default::default() });
    h.step();
    h.event(egui::Event::Key { key: egui::Key::Enter, physical_key: None, pressed: false, repeat: false, modifiers: Default::default() });
    h.run_steps(2);
    assert!(target.is_file(), "Enter saved: {:?}", h.state().path_prompt);
    assert!(h.state().path_prompt.is_none(), "and closed the field");
}

#[test]
fn without_a_file_dialog_the_path_field_opens_saves_and_names_a_bad_path() {
    let dir = common::scratch("fix-path");
    let (photo, img) = png(&dir, "photo.png", 90);
    let mut s = common::fixture_studio(None);
    // as on a system without a file-dialog portal or zenity
    s.no_file_dialog = Some("none here".into());
    let mut h = harness(s);
    let before = h.state().doc.as_ref().unwrap().image().clone();
    menu(&mut h, "File", "Open...  (Ctrl+O)");
    h.run_steps(2);
    assert_eq!(h.state().path_prompt.as_ref().map(|p| p.kind), Some(PathKind::Open), "File > Open asks for a path");
    // a bad path: said, naming it; the canvas and the field stay
    let bad = dir.join("no-such-photo.png");
    h.state_mut().path_prompt.as_mut().unwrap().text = bad.display().to_string();
    h.get_by_label("OK").click();
    h.run_steps(2);
    let shown = format!("There is no file at {}", bad.display());
    assert_eq!(labels_with(&h, &shown).len(), 1, "{:?}", h.state().path_prompt);
    assert_eq!(h.state().doc.as_ref().unwrap().image(), &before, "nothing is lost");
    // a good one opens
    h.state_mut().path_prompt.as_mut().unwrap().text = photo.display().to_string();
    h.get_by_label("OK").click();
    h.run_steps(2);
    assert!(h.state().path_prompt.is_none());
    assert_eq!(h.state().doc.as_ref().unwrap().image(), &img);
    // the next one starts in the folder last used
    h.state_mut().open_path_prompt(PathKind::Open);
    h.run_steps(2);
    assert!(h.state().path_prompt.as_ref().unwrap().text.starts_with(&dir.display().to_string()));
    h.get_by_label("Cancel").click();
    h.run_steps(2);
    assert!(h.state().path_prompt.is_none());
    // File > Save PNG... proposes a name beside the photo, never the photo
    menu(&mut h, "File", "Save PNG...  (Ctrl+S)");
    h.run_steps(2);
    let proposed = h.state().path_prompt.as_ref().map(|p| p.text.clone()).unwrap_or_default();
    assert_eq!(proposed, dir.join("photo-unmask.png").display().to_string());
    h.get_by_label("OK").click();
    h.run_steps(2);
    assert!(dir.join("photo-unmask.png").is_file());
    // Model > Open model folder... too
    menu(&mut h, "Model", "Open model folder...");
    h.run_steps(2);
    h.state_mut().path_prompt.as_mut().unwrap().text = dir.join("no-model").display().to_string();
    h.get_by_label("OK").click();
    h.run_steps(2);
    assert!(h.state().path_prompt.as_ref().unwrap().error.as_deref().unwrap_or("").contains("no-model"));
    assert!(h.state().model_info().is_some(), "the loaded model stays");
}

#[test]
fn each_document_keeps_its_own_ask_history() {
    let dir = common::scratch("fix-ask");
    let (other, _) = png(&dir, "other.png", 40);
    let mut s = common::fixture_studio(None);
    s.set_mode(Mode::Ask);
    s.question = "what color is the circle?".into();
    let mut h = harness(s);
    h.get_by_label("Send question").click();
    h.step();
    until(&mut h, "the answer", |s| !s.is_running());
    let a = h.state().doc.as_ref().unwrap().id;
    let answer = h.state().chat[0].answer.clone();
    assert!(h.state().chat[0].answered);
    assert!(h.state_mut().open_path(&other));
    h.run_steps(2);
    assert_eq!(h.state().tabs().len(), 2, "a document asked about is kept in its tab");
    assert!(h.state().chat.is_empty(), "the new document has no questions");
    assert!(labels_with(&h, "Q: what color").is_empty());
    h.state_mut().switch_to(a);
    h.run_steps(2);
    assert_eq!(h.state().chat.len(), 1);
    assert_eq!(h.state().chat[0].answer, answer);
    assert_eq!(labels_with(&h, "Q: what color is the circle?").len(), 1);
}

#[test]
fn the_session_keeps_each_documents_questions_and_both_prompts() {
    let dir = common::scratch("fix-session");
    let session = dir.join("session");
    let open = |session: &std::path::Path, image: Option<std::path::PathBuf>| {
        let mut s = Studio::new(StudioOptions {
            settings_path: None,
            model_dir: Some(common::fixtures().join("model")),
            open: image,
            ctx: None,
            session_dir: Some(session.to_path_buf()),
        });
        assert!(s.wait_idle(Duration::from_secs(30)));
        s
    };
    let mut a = open(&session, Some(png(&dir, "p.png", 5).0));
    a.set_mode(Mode::Ask);
    a.question = "what color is the circle?".into();
    a.start();
    assert!(a.wait_idle(Duration::from_secs(60)));
    a.set_mode(Mode::Retouch);
    a.prompt = "a blue square".into();
    a.set_mode(Mode::Sketch);
    a.prompt = "a cat".into();
    let turn = a.chat[0].clone();
    assert!(a.flush_session());
    std::mem::forget(a);

    let mut b = open(&session, None);
    assert_eq!(b.restore_offer, Some(1));
    b.restore_session();
    assert_eq!(b.chat, vec![turn]);
    assert_eq!((b.prompt_of(Mode::Retouch), b.prompt_of(Mode::Sketch)), ("a blue square", "a cat"));
    b.end_session();

    // a session written before these fields existed is still offered
    std::fs::create_dir_all(&session).unwrap();
    let old = r#"{"documents":[{"path":null,"current":0,"dirty":true,"mask":"m.png","versions":[{"file":"v.png","codes":null,"label":"x","parameters":null,"seed":null,"content":null}]}]}"#;
    std::fs::write(session.join("session.json"), old).unwrap();
    assert_eq!(unmask_studio::session::pending(&session), Some(1));
}

#[test]
fn the_status_bar_and_the_model_menu_give_the_same_size() {
    let s = common::fixture_studio(None);
    let mut h = harness(s);
    let figure = unmask_studio::models::size_text(unmask_studio::models::bundle_bytes(&common::fixtures().join("model")));
    let status = labels_with(&h, &format!("params, {figure} on disk"));
    assert_eq!(status.len(), 1, "the status bar: {:?}", labels_with(&h, "params"));
    assert!(!status[0].contains("weights"), "{status:?}");
    h.get_by_label("Model").click();
    h.run_steps(2);
    let entries = labels_with(&h, &format!("({figure}, "));
    assert_eq!(entries.len(), 1, "the menu's entry for the same model: {:?}", labels_with(&h, "MiB"));
}

#[test]
fn an_empty_prompt_says_why_on_the_notices_first_line() {
    let s = common::fixture_studio(None);
    let mut h = harness(s);
    h.get_by_label("Run edit").click();
    h.run_steps(3);
    let shown = labels_with(&h, "Cannot run: the prompt is empty");
    assert_eq!(shown.len(), 1, "visible, not under details: {:?}", h.state().notices);
    assert!(shown[0].contains("type how the whole image should change"), "{shown:?}");
}

#[test]
fn sketch_and_retouch_keep_their_own_prompts() {
    let s = common::fixture_studio(None);
    let mut h = harness(s);
    h.state_mut().prompt = "a red circle on the left".into();
    h.get_by_label("Sketch").click();
    h.run_steps(2);
    assert_eq!(h.state().mode, Mode::Sketch);
    assert_eq!(h.state().prompt, "", "Sketch starts from its own, empty prompt");
    h.state_mut().prompt = "a lighthouse at dusk".into();
    h.get_by_label("Retouch").click();
    h.run_steps(2);
    assert_eq!(h.state().prompt, "a red circle on the left");
    h.get_by_label("Ask").click();
    h.run_steps(2);
    h.get_by_label("Sketch").click();
    h.run_steps(2);
    assert_eq!(h.state().prompt, "a lighthouse at dusk");
    assert_eq!(h.state().prompt_of(Mode::Retouch), "a red circle on the left");
}
