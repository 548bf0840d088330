//! The README's table of plugin settings against the manifests the plugins generate from
//! their `Settings` types: a setting the README leaves out, or one it names that no
//! longer exists, fails here rather than in an operator's router.yaml.

use std::collections::BTreeSet;

use alert_router::plugins::Catalog;
use alert_router_tests::harness::{plugin_dir, repo_root};

/// The `| plugin | settings |` table of the README's "Plugins" section: each row's plugin
/// and the settings it names (the first backticked word of each comma-separated item;
/// commas inside parentheses belong to the item).
fn readme_rows() -> Vec<(String, BTreeSet<String>)> {
    let path = repo_root().join("README.md");
    let readme = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let table = readme
        .split_once("\n| plugin | settings |\n")
        .unwrap_or_else(|| panic!("README.md has no `| plugin | settings |` table"))
        .1;
    table
        .lines()
        .skip(1) // |---|---|
        .take_while(|line| line.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').collect();
            let (Some(plugin), Some(settings)) = (cells.get(1), cells.get(2)) else {
                panic!("a row without two cells: {row}");
            };
            let plugin = first_code(plugin).unwrap_or_else(|| panic!("no plugin in: {row}"));
            let named = items(settings)
                .into_iter()
                .map(|item| {
                    first_code(item).unwrap_or_else(|| panic!("{plugin}: no setting in {item:?}"))
                })
                .collect();
            (plugin, named)
        })
        .collect()
}

/// The text between the first pair of backticks.
fn first_code(text: &str) -> Option<String> {
    let mut parts = text.split('`');
    parts.next()?;
    parts.next().map(str::to_owned)
}

/// `text` split at the commas outside parentheses.
fn items(text: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items
}

#[test]
fn the_readme_names_every_setting_of_every_plugin_and_no_other() {
    let rows = readme_rows();
    let shipped: BTreeSet<String> = std::fs::read_dir(repo_root().join("plugins"))
        .expect("the plugins directory")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let documented: BTreeSet<String> = rows.iter().map(|(plugin, _)| plugin.clone()).collect();
    assert_eq!(documented, shipped, "the README's table against plugins/");

    let catalog = Catalog::new(vec![plugin_dir()]);
    for (name, named) in rows {
        // Loading parses the generated manifest the way the router does.
        let plugin = catalog
            .load(&name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let manifest = plugin.manifest();
        assert!(manifest.declares_settings, "{name} declares no settings");
        let declared: BTreeSet<String> = manifest.settings.keys().cloned().collect();
        assert_eq!(
            named, declared,
            "{name}: the README's row (left) against the settings the plugin declares (right)"
        );
        for (setting, schema) in &manifest.settings {
            assert!(
                schema.description.as_deref().is_some_and(|d| !d.is_empty()),
                "{name}.{setting} has no description: give the field a doc comment"
            );
        }
    }
}

#[test]
fn an_item_is_split_at_commas_outside_parentheses_only() {
    assert_eq!(
        items("`a` (`x`, `y`), `b`: `c` (d, e)"),
        ["`a` (`x`, `y`)", " `b`: `c` (d, e)"]
    );
    assert_eq!(first_code(" `b`: `c`").as_deref(), Some("b"));
}
