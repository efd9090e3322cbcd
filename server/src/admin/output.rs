//! What `coffer-server admin …` prints: tables and short summaries for people by default,
//! the admin API's JSON unchanged with `--json` (for scripts). Rendering is a pure function
//! of the API's answer so it is tested without a server.

use serde_json::Value;

/// Which answer is being printed (the JSON shapes differ per endpoint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum View {
    Status,
    Heal,
    BucketList,
    Bucket,
    BucketDeleted {
        name: String,
    },
    KeyList,
    /// A key; with its secret when the call just set one (create, rotate).
    Key,
    KeyDeleted {
        id: String,
    },
}

/// The text printed for `value`, the answer of the endpoint `view` names: pretty JSON with
/// `json`, else a table or summary ending in a newline.
pub fn render(view: &View, value: &Value, json: bool) -> String {
    if json {
        let mut out = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
        out.push('\n');
        return out;
    }
    match view {
        View::Status => status(value),
        View::Heal => fields(value, &[]),
        View::BucketList => bucket_list(value),
        View::Bucket => bucket(value),
        View::BucketDeleted { name } => bucket_deleted(name, value),
        View::KeyList => key_list(value),
        View::Key => key(value),
        View::KeyDeleted { id } => {
            if value["deleted"] == Value::Bool(false) {
                format!("access key {id} did not exist\n")
            } else {
                format!("deleted access key {id}\n")
            }
        }
    }
}

/// Columns padded to their widest cell, two spaces apart, header first.
struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A JSON scalar as a cell ("-" for null or absent).
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
}

/// Bytes in binary units, e.g. `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `name: value` lines for an object's scalar members, `skip` left out, names as they are.
fn fields(value: &Value, skip: &[&str]) -> String {
    let Value::Object(map) = value else {
        return format!("{}\n", text(value));
    };
    let mut t = Table { rows: Vec::new() };
    for (k, v) in map {
        if skip.contains(&k.as_str()) || v.is_object() || v.is_array() {
            continue;
        }
        t.row(vec![format!("{k}:"), text(v)]);
    }
    t.render()
}

fn status(v: &Value) -> String {
    let mut out = format!(
        "version {}  region {}\nerasure {} data + {} parity shards, write quorum {}, read quorum {}\n\n",
        text(&v["version"]),
        text(&v["region"]),
        text(&v["data_shards"]),
        text(&v["parity_shards"]),
        text(&v["write_quorum"]),
        text(&v["read_quorum"]),
    );
    let mut t = Table::new(&["DRIVE", "STATE", "PATH"]);
    let drives = v["drives"].as_array().cloned().unwrap_or_default();
    let online = drives.iter().filter(|d| d["online"] == true).count();
    for d in &drives {
        t.row(vec![
            text(&d["index"]),
            if d["online"] == true {
                "online"
            } else {
                "offline"
            }
            .into(),
            text(&d["path"]),
        ]);
    }
    out.push_str(&t.render());
    out.push_str(&format!("{online}/{} drives online\n", drives.len()));
    out
}

fn bucket_list(v: &Value) -> String {
    let buckets = v["buckets"].as_array().cloned().unwrap_or_default();
    if buckets.is_empty() {
        return "no buckets\n".into();
    }
    let mut t = Table::new(&["NAME", "OBJECTS", "SIZE", "VERSIONING", "CREATED"]);
    for b in &buckets {
        t.row(usage_row(b));
    }
    t.render()
}

fn usage_row(b: &Value) -> Vec<String> {
    let u = &b["usage"];
    let approx = if u["complete"] == false { "≥" } else { "" };
    vec![
        text(&b["name"]),
        format!("{approx}{}", text(&u["objects"])),
        format!("{approx}{}", human_bytes(u["bytes"].as_u64().unwrap_or(0))),
        text(&b["versioning"]),
        text(&b["created"]),
    ]
}

fn bucket(v: &Value) -> String {
    let mut t = Table::new(&["NAME", "OBJECTS", "SIZE", "VERSIONING", "CREATED"]);
    t.row(usage_row(v));
    let mut out = t.render();
    if let Some(region) = v["region"].as_str() {
        out.push_str(&format!("region {region}\n"));
    }
    out
}

fn bucket_deleted(name: &str, v: &Value) -> String {
    match v {
        // A forced delete reports what it removed.
        Value::Object(_) if v["existed"] == false => format!("bucket {name} did not exist\n"),
        Value::Object(_) => format!(
            "deleted bucket {name} and {} object version(s) in it\n",
            text(&v["deletedObjects"])
        ),
        _ => format!("deleted bucket {name} (or it did not exist)\n"),
    }
}

fn grants(k: &Value) -> String {
    k["buckets"]
        .as_array()
        .map(|bs| {
            bs.iter()
                .map(|b| format!("{}:{}", text(&b["name"]), text(&b["mode"])))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn key_list(v: &Value) -> String {
    let keys = v["keys"].as_array().cloned().unwrap_or_default();
    if keys.is_empty() {
        return "no access keys\n".into();
    }
    let mut t = Table::new(&["ACCESS KEY", "ENABLED", "EXPIRES", "BUCKETS", "DESCRIPTION"]);
    for k in &keys {
        t.row(vec![
            text(&k["accessKey"]),
            text(&k["enabled"]),
            text(&k["expiresAt"]),
            grants(k),
            text(&k["description"]),
        ]);
    }
    t.render()
}

fn key(v: &Value) -> String {
    let mut t = Table { rows: Vec::new() };
    t.row(vec!["access key:".into(), text(&v["accessKey"])]);
    if let Some(secret) = v["secretKey"].as_str() {
        t.row(vec!["secret key:".into(), secret.to_string()]);
    }
    t.row(vec!["buckets:".into(), grants(v)]);
    t.row(vec!["enabled:".into(), text(&v["enabled"])]);
    t.row(vec!["expires:".into(), text(&v["expiresAt"])]);
    t.row(vec!["created:".into(), text(&v["created"])]);
    t.row(vec!["description:".into(), text(&v["description"])]);
    let mut out = t.render();
    if v["secretKey"].is_string() {
        out.push_str("The secret key is shown only now; store it safely.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_output_is_the_api_answer() {
        let v = json!({ "buckets": [] });
        let out = render(&View::BucketList, &v, true);
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), v);
    }

    #[test]
    fn bucket_lists_are_aligned_tables() {
        let v = json!({ "buckets": [
            { "name": "photos", "created": "2025-01-01T00:00:00Z", "region": "us-east-1",
              "versioning": "Unversioned", "usage": { "objects": 3, "bytes": 1536, "complete": true } },
            { "name": "a", "created": "2025-01-02T00:00:00Z", "region": "us-east-1",
              "versioning": "Unversioned", "usage": { "objects": 100000, "bytes": 0, "complete": false } },
        ]});
        let out = render(&View::BucketList, &v, false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("NAME    OBJECTS  SIZE"), "{out}");
        assert!(lines[1].starts_with("photos  3        1.5 KiB"), "{out}");
        assert!(lines[2].starts_with("a       ≥100000  ≥0 B"), "{out}");
        assert_eq!(
            render(&View::BucketList, &json!({ "buckets": [] }), false),
            "no buckets\n"
        );
    }

    #[test]
    fn a_new_key_shows_its_secret_once_with_a_warning() {
        let v = json!({ "accessKey": "AK1", "secretKey": "s3cr3t", "enabled": true,
            "buckets": [{ "name": "a", "mode": "ReadOnly" }, { "name": "b", "mode": "ReadWrite" }],
            "created": "2025-01-01T00:00:00Z", "description": "" });
        let out = render(&View::Key, &v, false);
        assert!(out.contains("access key:   AK1"), "{out}");
        assert!(out.contains("secret key:   s3cr3t"), "{out}");
        assert!(out.contains("a:ReadOnly,b:ReadWrite"), "{out}");
        assert!(out.contains("shown only now"), "{out}");
        let mut described = v.clone();
        described.as_object_mut().unwrap().remove("secretKey");
        assert!(!render(&View::Key, &described, false).contains("secret"));
    }

    #[test]
    fn status_counts_online_drives() {
        let v = json!({ "version": "0.1.0", "region": "us-east-1", "data_shards": 2,
            "parity_shards": 2, "write_quorum": 3, "read_quorum": 2, "drives": [
                { "index": 0, "path": "/d0", "online": true },
                { "index": 1, "path": "", "online": false }] });
        let out = render(&View::Status, &v, false);
        assert!(
            out.contains("2 data + 2 parity shards, write quorum 3"),
            "{out}"
        );
        assert!(out.contains("0      online   /d0"), "{out}");
        assert!(out.contains("1      offline  -"), "{out}");
        assert!(out.ends_with("1/2 drives online\n"), "{out}");
    }

    #[test]
    fn sizes_are_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
