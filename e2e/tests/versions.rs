//! One version everywhere: the workspace's `version` (Cargo.toml) is what every crate, the
//! chart's `version` and `appVersion`, the default image tags (chart values, the operator's
//! server image, `coffer-e2e image build`) and every image reference in the README,
//! manifests, chart and docs say. A release bumps Cargo.toml and Chart.yaml; this test names
//! anything left behind.

use std::path::{Path, PathBuf};

use coffer_operator::images::{default_server_image, operator_image_in, REPOSITORY, VERSION};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e sits in the workspace")
        .to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `version = "…"` of `[workspace.package]` in the root Cargo.toml.
fn workspace_version() -> String {
    let text = read("Cargo.toml");
    let section = text
        .split("[workspace.package]")
        .nth(1)
        .expect("[workspace.package] in Cargo.toml");
    section
        .lines()
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| l.strip_prefix("version = "))
        .map(|v| v.trim().trim_matches('"').to_string())
        .expect("version in [workspace.package]")
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "md" || e == "tpl")
        {
            out.push(path);
        }
    }
}

#[test]
fn every_version_and_default_image_tag_is_the_workspace_version() {
    let version = workspace_version();
    assert_eq!(
        VERSION, version,
        "the crates build with the workspace version"
    );
    for krate in ["server", "operator", "e2e"] {
        let manifest = read(&format!("{krate}/Cargo.toml"));
        assert!(
            manifest.contains("version.workspace = true"),
            "{krate}/Cargo.toml must take the workspace version"
        );
    }

    let chart: serde_yaml::Value = serde_yaml::from_str(&read("charts/coffer/Chart.yaml")).unwrap();
    assert_eq!(
        chart["version"].as_str(),
        Some(version.as_str()),
        "Chart.yaml version"
    );
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(version.as_str()),
        "Chart.yaml appVersion"
    );

    let values: serde_yaml::Value =
        serde_yaml::from_str(&read("charts/coffer/values.yaml")).unwrap();
    for (key, name) in [
        ("image", "coffer-operator"),
        ("serverImage", "coffer-server"),
    ] {
        assert_eq!(
            values[key]["repository"].as_str(),
            Some(format!("{REPOSITORY}/{name}").as_str()),
            "values.yaml {key}.repository"
        );
        assert_eq!(
            values[key]["tag"].as_str(),
            Some(""),
            "values.yaml {key}.tag must stay empty (the appVersion)"
        );
    }
    assert_eq!(
        default_server_image(),
        format!("{REPOSITORY}/coffer-server:{version}")
    );
    assert_eq!(
        operator_image_in(REPOSITORY),
        format!("{REPOSITORY}/coffer-operator:{version}")
    );

    // Every reference to a released image, wherever a user copies it from.
    let mut files = vec![repo().join("README.md"), repo().join("ARCHITECTURE.md")];
    for dir in ["manifests", "charts", "docs"] {
        files_under(&repo().join(dir), &mut files);
    }
    let mut seen = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for name in ["coffer-server", "coffer-operator"] {
            let prefix = format!("{REPOSITORY}/{name}:");
            for (at, _) in text.match_indices(&prefix) {
                let tag: String = text[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || ".-_".contains(*c))
                    .collect();
                assert_eq!(
                    tag,
                    version,
                    "{} names {prefix}{tag}",
                    file.strip_prefix(repo()).unwrap().display()
                );
                seen += 1;
            }
        }
        for line in text
            .lines()
            .filter(|l| l.contains("app.kubernetes.io/version:"))
        {
            assert!(
                line.contains(&format!("\"{version}\"")) || line.contains("AppVersion"),
                "{}: {line}",
                file.display()
            );
        }
    }
    assert!(seen > 0, "the install manifest names the operator image");
}
