//! `unmask-studio [IMAGE] [--model DIR]`: the Studio window.

use unmask_studio::{settings::Settings, Studio, StudioOptions};

struct StudioApp(Studio);

impl eframe::App for StudioApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.0.show(ui);
    }

    /// A clean exit (the user closed the window): the session is not offered back.
    fn on_exit(&mut self) {
        self.0.end_session();
    }
}

fn main() -> eframe::Result {
    unmask::alloc::keep_freed_buffers();
    unmask::threads::decide_once();
    let mut open = None;
    let mut model_dir = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--model" {
            model_dir = args.next().map(Into::into);
        } else if a == "--help" || a == "-h" {
            println!("usage: unmask-studio [IMAGE] [--model DIR]");
            return Ok(());
        } else {
            open = Some(a.into());
        }
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_title("Unmask Studio").with_inner_size([1280.0, 820.0]).with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "Unmask Studio",
        options,
        Box::new(move |cc| {
            let studio = Studio::new(StudioOptions {
                settings_path: Settings::default_path(),
                model_dir,
                open,
                ctx: Some(cc.egui_ctx.clone()),
                session_dir: unmask_studio::session::default_dir(),
            });
            Ok(Box::new(StudioApp(studio)))
        }),
    )
}
