//! Writing only what changed. A reconcile of an unchanged world must make no writes, so each
//! desired object is compared with what the API server holds (which carries defaults the
//! operator never set) and applied — server-side, with the operator's field manager — only
//! when some field the operator owns differs.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use kube::api::{Api, Patch, PatchParams};
use kube::Resource;

use crate::crd::Condition;
use crate::resources::FIELD_MANAGER;

/// Whether `have` holds everything `want` says: every field of an object equal (recursively),
/// lists of the same length with each element contained. Fields only `have` has (defaults,
/// other managers' fields, status) do not matter.
pub fn json_contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w.iter().all(|(k, wv)| match h.get(k) {
            Some(hv) => json_contains(hv, wv),
            None => wv.is_null(),
        }),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(hv, wv)| json_contains(hv, wv))
        }
        (h, w) => h == w,
    }
}

/// Applies `desired` unless the server's copy already contains it. Returns the object as
/// the server holds it afterwards and whether a write happened.
pub async fn apply_if_changed<K>(api: &Api<K>, desired: &K) -> Result<(K, bool), kube::Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = desired
        .meta()
        .name
        .clone()
        .expect("desired objects are built with a name");
    if let Some(current) = api.get_opt(&name).await? {
        let (have, want) = (
            serde_json::to_value(&current).expect("API objects serialize"),
            serde_json::to_value(desired).expect("desired objects serialize"),
        );
        if json_contains(&have, &want) {
            return Ok((current, false));
        }
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api.patch(&name, &params, &Patch::Apply(desired)).await?;
    Ok((applied, true))
}

/// `next` conditions with each one's `lastTransitionTime` kept from `previous` when its
/// status did not change, and set to `now` when it did (or is new).
pub fn merge_conditions(previous: &[Condition], next: Vec<Condition>, now: &str) -> Vec<Condition> {
    next.into_iter()
        .map(|mut c| {
            let before = previous.iter().find(|p| p.type_ == c.type_);
            c.last_transition_time = match before {
                Some(p) if p.status == c.status => p.last_transition_time.clone(),
                _ => Some(now.to_string()),
            };
            c
        })
        .collect()
}

/// Writes `status` to `obj`'s status subresource (server-side apply) when it differs from
/// the status the object has. Returns whether it wrote.
pub async fn patch_status<K, S>(
    api: &Api<K>,
    obj: &K,
    current: Option<&S>,
    status: &S,
) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(false);
    }
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let name = obj.meta().name.clone().expect("API objects have a name");
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(true)
}

/// Now as RFC 3339 (seconds), the format of condition and status times.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_added_by_the_server_are_not_drift() {
        let want = json!({"spec": {"replicas": 4, "ports": [{"port": 9000}]}});
        let have = json!({"spec": {"replicas": 4, "revisionHistoryLimit": 10,
                          "ports": [{"port": 9000, "protocol": "TCP"}]}, "status": {}});
        assert!(json_contains(&have, &want));
        assert!(!json_contains(
            &json!({"spec": {"replicas": 3, "ports": [{"port": 9000}]}}),
            &want
        ));
        assert!(!json_contains(
            &json!({"spec": {"replicas": 4, "ports": [{"port": 9000}, {"port": 9100}]}}),
            &want
        ));
    }

    #[test]
    fn transition_times_move_only_when_a_status_changes() {
        use crate::crd::{Condition, READY};
        let before = merge_conditions(
            &[],
            vec![Condition::new(READY, false, "Creating", "", Some(1))],
            "t1",
        );
        assert_eq!(before[0].last_transition_time.as_deref(), Some("t1"));
        let same = merge_conditions(
            &before,
            vec![Condition::new(READY, false, "Waiting", "", Some(2))],
            "t2",
        );
        assert_eq!(same[0].last_transition_time.as_deref(), Some("t1"));
        let flipped = merge_conditions(
            &same,
            vec![Condition::new(READY, true, "Ready", "", Some(2))],
            "t3",
        );
        assert_eq!(flipped[0].last_transition_time.as_deref(), Some("t3"));
    }
}
