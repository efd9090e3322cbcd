//! Writing only what changed. A reconcile of an unchanged world must make no writes, and a
//! field removed from the spec must disappear from the object. Both come from server-side
//! apply with the operator's field manager plus one annotation:
//!
//! - every applied object carries `coffer.dev/applied-hash`, a hash of the desired object the
//!   operator last applied. A different hash means the operator's intent changed — a field
//!   added, changed or *removed* — and the whole desired object is applied again; server-side
//!   apply then drops every field the manager owned and no longer names (a removed
//!   nodeSelector, toleration, limit or Service annotation).
//! - with the same hash, the object is compared with what the API server holds, so drift made
//!   by hand (`kubectl edit`) is still put back. The comparison ignores fields only the server
//!   has (defaults, status, other managers' fields) and compares resource quantities by value,
//!   since the API server rewrites them (`0.5` → `500m`, `1024Mi` → `1Gi`).
//!
//! Why a hash rather than reading `managedFields`: the managed field set names fields, not
//! values, and its list keys depend on each type's merge strategy; the hash answers "did the
//! intent change" exactly, from our own output, without a schema.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use kube::api::{Api, Patch, PatchParams};
use kube::Resource;

use crate::crd::Condition;
use crate::resources::FIELD_MANAGER;

/// Annotation holding the hash of the desired object last applied.
pub const APPLIED_HASH: &str = "coffer.dev/applied-hash";

/// Whether `have` holds everything `want` says: every field of an object equal (recursively),
/// lists of the same length with each element contained, quantities (the values of
/// `limits`, `requests` and `capacity` maps) equal by value. Fields only `have` has
/// (defaults, other managers' fields, status) do not matter.
pub fn json_contains(have: &Value, want: &Value) -> bool {
    contains(have, want, false)
}

fn contains(have: &Value, want: &Value, quantities: bool) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w.iter().all(|(k, wv)| match h.get(k) {
            // The values of a `limits` map (etc.) are quantities.
            Some(hv) => contains(
                hv,
                wv,
                quantities || matches!(k.as_str(), "limits" | "requests" | "capacity"),
            ),
            None => wv.is_null(),
        }),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(hv, wv)| contains(hv, wv, false))
        }
        (Value::String(h), Value::String(w)) if quantities && h != w => {
            matches!((quantity_value(h), quantity_value(w)), (Some(a), Some(b)) if a == b)
        }
        (h, w) => h == w,
    }
}

/// A Kubernetes quantity as an exact rational `mantissa × 2^pow2 × 10^pow10` reduced to one
/// comparable pair: the value in units of 10^-9 times a power of 1024, so `0.5` and `500m`,
/// `1Gi` and `1024Mi` compare equal. `None` for text that is not a quantity.
fn quantity_value(q: &str) -> Option<(i128, u32)> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (pow1024, pow10): (u32, i32) = match suffix {
        "" => (0, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        "Ki" => (1, 0),
        "Mi" => (2, 0),
        "Gi" => (3, 0),
        "Ti" => (4, 0),
        "Pi" => (5, 0),
        "Ei" => (6, 0),
        s if s.starts_with(['e', 'E']) => (0, s[1..].parse().ok()?),
        _ => return None,
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.trim_start_matches(['+', '-']).is_empty() && frac.is_empty() {
        return None;
    }
    let digits: i128 = format!("{int}{frac}").parse().ok()?;
    // value = digits × 10^(pow10 − len(frac)) × 1024^pow1024, in units of 10^-9.
    let exp = pow10 - frac.len() as i32 + 9;
    let mut nanos = digits;
    if exp >= 0 {
        nanos = nanos.checked_mul(10i128.checked_pow(exp as u32)?)?;
    } else {
        let div = 10i128.checked_pow((-exp) as u32)?;
        if nanos % div != 0 {
            return None;
        }
        nanos /= div;
    }
    // Fold powers of 1024 into the number where they fit, so 1Gi == 1024Mi.
    let mut pow = pow1024;
    while pow > 0 {
        match nanos.checked_mul(1024) {
            Some(n) => {
                nanos = n;
                pow -= 1;
            }
            None => break,
        }
    }
    Some((nanos, pow))
}

/// Hex SHA-256 of `value`'s JSON text. serde_json's maps are sorted by key (the workspace does
/// not enable `preserve_order`), so the text, and the hash, is canonical.
pub fn value_hash(value: &Value) -> String {
    hex::encode(Sha256::digest(value.to_string().as_bytes()))
}

/// Applies `desired` (server-side, as `coffer-operator`, forcing ownership) unless the
/// operator applied this very object before and the server's copy still contains it.
/// Returns the object as the server holds it afterwards and whether a write happened.
pub async fn apply_if_changed<K>(api: &Api<K>, desired: &K) -> Result<(K, bool), kube::Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = desired
        .meta()
        .name
        .clone()
        .expect("desired objects are built with a name");
    let mut want = serde_json::to_value(desired).expect("desired objects serialize");
    let hash = value_hash(&want);
    want["metadata"]
        .as_object_mut()
        .expect("desired objects have metadata")
        .entry("annotations")
        .or_insert_with(|| Value::Object(Default::default()))
        .as_object_mut()
        .expect("annotations are a map")
        .insert(APPLIED_HASH.into(), Value::String(hash.clone()));
    if let Some(current) = api.get_opt(&name).await? {
        let have = serde_json::to_value(&current).expect("API objects serialize");
        let same_intent = current
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(APPLIED_HASH))
            == Some(&hash);
        if same_intent && json_contains(&have, &want) {
            return Ok((current, false));
        }
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api.patch(&name, &params, &Patch::Apply(&want)).await?;
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
    fn quantities_the_api_server_rewrites_compare_by_value() {
        let want = json!({"resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"},
                                        "requests": {"storage": "1e3"}}});
        let have = json!({"resources": {"limits": {"cpu": "500m", "memory": "1Gi"},
                                        "requests": {"storage": "1k"}}});
        assert!(json_contains(&have, &want));
        let more = json!({"resources": {"limits": {"cpu": "600m", "memory": "1Gi"},
                                        "requests": {"storage": "1k"}}});
        assert!(!json_contains(&more, &want));
        // Only quantities are compared by value: other strings stay strings.
        assert!(!json_contains(
            &json!({"image": "1k"}),
            &json!({"image": "1e3"})
        ));
        assert_eq!(quantity_value("1.5Gi"), quantity_value("1536Mi"));
        assert_eq!(quantity_value("2"), quantity_value("2000m"));
        assert_eq!(quantity_value("abc"), None);
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
