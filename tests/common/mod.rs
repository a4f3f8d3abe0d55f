//! Shared helpers for the integration tests: where the golden fixtures live.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/fixtures/tiny-dimoo`, beside the checkout. Fails with a clear
/// message when the fixtures are not there.
pub fn fixtures() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/tiny-dimoo");
    assert!(
        dir.join("model/config.json").is_file(),
        "golden fixtures not found at {}: the tests need ../shared/fixtures/tiny-dimoo beside the checkout",
        dir.display()
    );
    dir
}

pub fn fixture_model() -> PathBuf {
    fixtures().join("model")
}

pub fn case(name: &str) -> PathBuf {
    fixtures().join("cases").join(name)
}

pub fn cases_json() -> serde_json::Value {
    let text = std::fs::read_to_string(case("cases.json")).expect("read cases.json");
    serde_json::from_str(&text).expect("parse cases.json")
}

/// A scratch folder unique to one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("unmask-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Copies the fixture bundle into a scratch folder so a test can damage it.
pub fn bundle_copy(name: &str) -> PathBuf {
    let dst = scratch(name).join("model");
    copy_dir(&fixture_model(), &dst);
    dst
}

fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
            let mut perm = std::fs::metadata(&to).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&to, perm).unwrap();
        }
    }
}
