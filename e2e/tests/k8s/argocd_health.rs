//! The chart's Argo CD health check (`charts/coffer/files/argocd-health.lua`) judged by a real
//! Lua interpreter on the live objects, the way Argo CD runs it: the resource as the global
//! `obj`, the script's returned `{status, message}` as the verdict. Scenario 8 samples it while
//! the store comes up (scenario 1) and checks Bucket and AccessKey once Ready (scenario 2);
//! [`losing_quorum_is_degraded`] takes more servers away than the store's parity covers.

use std::io::Write;
use std::process::{Command, Stdio};

use coffer_e2e::k8s::Cluster;
use serde_json::Value;

use super::{condition, get_json, ready, repo, wait_for, NS};

/// What the health script says about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub status: String,
    pub message: String,
}

/// `value` as a Lua expression building the same table Argo CD builds from the object's
/// JSON: objects and arrays become tables (arrays 1-based), `null` becomes `nil`. Strings are
/// written byte by byte with every byte outside printable ASCII as a three-digit `\ddd`
/// escape, so no content (quotes, newlines, `]]`, UTF-8) can end the literal early.
pub fn lua_literal(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua_literal).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_literal(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// Runs the chart's health script on `obj` under `lua5.4`.
pub fn judge(obj: &Value) -> Health {
    let script = repo().join("charts/coffer/files/argocd-health.lua");
    let program = format!(
        "obj = {}\nlocal hs = dofile({})\nio.write(tostring(hs.status), \"\\n\", tostring(hs.message))\n",
        lua_literal(obj),
        lua_string(&script.display().to_string()),
    );
    let mut child = Command::new("lua5.4")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running lua5.4 (test.sh installs it; apt-get install lua5.4)");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(program.as_bytes())
        .expect("writing the Lua program");
    let out = child.wait_with_output().expect("lua5.4 runs");
    assert!(
        out.status.success(),
        "the health script failed on {obj}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, message) = said.split_once('\n').unwrap_or((&said, ""));
    Health {
        status: status.into(),
        message: message.into(),
    }
}

/// The verdicts seen while a store came up, in order, each change once.
#[derive(Default)]
pub struct Verdicts(pub Vec<Health>);

impl Verdicts {
    pub fn sample(&mut self, obj: &Value) {
        let health = judge(obj);
        if self.0.last().map(|h| &h.status) != Some(&health.status) {
            eprintln!("argocd health: {} {:?}", health.status, health.message);
            self.0.push(health);
        }
    }

    /// Progressing, then Healthy, never Degraded: what an Argo CD user watching a new store
    /// should see.
    pub fn assert_progressing_then_healthy(&self) {
        let statuses: Vec<&str> = self.0.iter().map(|h| h.status.as_str()).collect();
        let first_healthy = statuses.iter().position(|s| *s == "Healthy");
        assert!(
            first_healthy.is_some_and(|i| statuses[..i].contains(&"Progressing")),
            "expected Progressing before Healthy, saw {statuses:?}"
        );
        assert!(
            !statuses.contains(&"Degraded"),
            "a store coming up was judged Degraded: {:?}",
            self.0
        );
        assert_eq!(statuses.last(), Some(&"Healthy"), "{:?}", self.0);
    }
}

/// A Ready object of `kind` is Healthy to Argo CD.
pub fn assert_healthy(cluster: &Cluster, kind: &str, name: &str) {
    let obj = ready(cluster, kind, NS, name).unwrap_or_else(|e| panic!("{e}"));
    let health = judge(&obj);
    assert_eq!(health.status, "Healthy", "{kind} {name}: {health:?}");
}

/// Runs `kubectl ARGS`, expecting success.
fn kubectl(cluster: &Cluster, args: &[&str]) {
    cluster
        .kubectl(args)
        .unwrap_or_else(|e| panic!("kubectl {}: {e:#}", args.join(" ")));
}

/// Scenario 8, Degraded: the store is 4 servers × 2 drives, one erasure set of 8 with the
/// default parity of 3 (write quorum 5). With every node cordoned, two server pods are
/// deleted: their replacements cannot be scheduled, so 4 drives stay away — more than the
/// parity — and no server can take a write. The operator sets Degraded and the health script
/// says Degraded. Uncordoned, the pods return on their volumes and the store is Healthy again.
pub async fn losing_quorum_is_degraded(cluster: &mut Cluster) {
    let store = get_json(cluster, &["objectstore", "-n", NS, "photos"]).expect("the store");
    assert_eq!(
        store["status"]["writeQuorum"], 5,
        "4 × 2 drives, parity 3: {}",
        store["status"]
    );
    let nodes = cluster
        .kubectl(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"])
        .expect("kubectl get nodes");
    let nodes: Vec<&str> = nodes.split_whitespace().collect();
    assert_eq!(nodes.len(), 4, "nodes: {nodes:?}");
    for node in &nodes {
        kubectl(cluster, &["cordon", node]);
    }
    let victims = ["photos-pool-0-2", "photos-pool-0-3"];
    let uids: Vec<Value> = victims
        .iter()
        .map(|v| {
            get_json(cluster, &["pod", "-n", NS, v]).expect("the pod")["metadata"]["uid"].clone()
        })
        .collect();
    let mut delete = vec!["delete", "pod", "-n", NS, "--wait=false"];
    delete.extend(victims);
    kubectl(cluster, &delete);
    wait_for("both replacements unschedulable", cluster, |c| {
        for (victim, uid) in victims.iter().zip(&uids) {
            let pod = get_json(c, &["pod", "-n", NS, victim])?;
            let waiting = pod["metadata"]["uid"] != *uid
                && pod["status"]["phase"] == "Pending"
                && condition(&pod, "PodScheduled").as_deref() == Some("False");
            if !waiting {
                return Err(format!("{victim}: {}", pod["status"]));
            }
        }
        Ok(())
    })
    .await;
    let degraded = wait_for("the store Degraded", cluster, |c| {
        let store = get_json(c, &["objectstore", "-n", NS, "photos"])?;
        let health = judge(&store);
        if condition(&store, "Degraded").as_deref() == Some("True") && health.status == "Degraded" {
            Ok((store, health))
        } else {
            Err(format!("{health:?}; status {}", store["status"]))
        }
    })
    .await;
    eprintln!(
        "scenario 8: with 2 of 4 servers away, argocd health {:?}, servers {}",
        degraded.1, degraded.0["status"]["servers"]
    );
    assert!(
        degraded.1.message.contains("QuorumLost"),
        "{:?}",
        degraded.1
    );
    assert_eq!(
        condition(&degraded.0, "Ready").as_deref(),
        Some("False"),
        "Ready while Degraded: {}",
        degraded.0["status"]
    );
    // The two servers left fail their readiness probe once they see they are below quorum;
    // Degraded must outlast that (then only unready servers can tell the operator).
    wait_for("Degraded with no server ready", cluster, |c| {
        let store = get_json(c, &["objectstore", "-n", NS, "photos"])?;
        let health = judge(&store);
        match (store["status"]["servers"].as_str(), health.status.as_str()) {
            (Some("0/4"), "Degraded") => Ok(()),
            (Some("0/4"), _) => panic!("Degraded ended while quorum was still lost: {health:?}"),
            _ => Err(format!("{health:?}; status {}", store["status"])),
        }
    })
    .await;
    let events = get_json(
        cluster,
        &[
            "events",
            "-n",
            NS,
            "--field-selector",
            "involvedObject.name=photos,type=Warning",
        ],
    )
    .expect("kubectl get events");
    assert!(
        events["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|e| e["reason"] == "QuorumLost")),
        "no QuorumLost warning Event: {events}"
    );

    for node in &nodes {
        kubectl(cluster, &["uncordon", node]);
    }
    wait_for("the store Ready and Healthy again", cluster, |c| {
        let store = ready(c, "objectstore", NS, "photos")?;
        let health = judge(&store);
        if store["status"]["drives"]["online"] == 8
            && condition(&store, "Degraded").as_deref() == Some("False")
            && health.status == "Healthy"
        {
            Ok(())
        } else {
            Err(format!("{health:?}; status {}", store["status"]))
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_becomes_the_same_lua_table() {
        let obj = serde_json::json!({
            "a": [1, 2.5, true, null, "x"],
            "q\"uote": "line\nbreak \\ ]] é",
            "gone": null,
            "nested": {"k": {}},
        });
        let literal = lua_literal(&obj);
        assert!(!literal.contains("gone"), "{literal}");
        assert!(
            literal.contains(r#"["q\"uote"] = "line\010break \\ ]] \195\169""#),
            "{literal}"
        );
        assert!(literal.contains("{1, 2.5, true, nil, \"x\"}"), "{literal}");
    }
}
