//! A template file: any text loads as a template or diagnostics, and one that loads
//! renders a sample event or fails to, never a panic. (Templates are read from a
//! directory, so the input is written to one first.)
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!(
        "alert-router-fuzz-templates-{}",
        std::process::id()
    ));
    let folder = dir.join("console");
    if std::fs::create_dir_all(&folder).is_err()
        || std::fs::write(folder.join("default.yaml"), data).is_err()
    {
        return;
    }
    let markup = |_: &str| alert_router::render::Markup::Html;
    let Ok(templates) = alert_router::render::Templates::load(&dir, &markup) else {
        return;
    };
    let Some(id) = templates.resolve("console", "console", "default") else {
        return;
    };
    let event = serde_json::json!({"type": "deal", "severity": "error", "labels": {"env": "prod"},
        "n": 3, "s": "x<b>&", "list": [1, 2], "time": "2026-12-04T00:00:00Z"});
    let ctx = alert_router::render::context(
        &event,
        "route",
        "console",
        "console",
        "2026-12-04T00:00:00Z",
    );
    let _ = templates.render_json(id, &ctx);
});
