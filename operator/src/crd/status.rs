//! Status types shared by the three kinds: conditions (each with its own
//! `observedGeneration`, as Kubernetes API conventions ask) and the reference to a store.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The resource is usable: for a store, every server runs the desired spec and every drive
/// is online; for a bucket or key, the server confirmed the desired settings.
pub const READY: &str = "Ready";
/// The operator is still moving the world towards the spec (rolling, creating, waiting).
pub const PROGRESSING: &str = "Progressing";
/// Something needs a human: quorum lost, or a terminal error the operator cannot fix.
pub const DEGRADED: &str = "Degraded";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// One condition, in the shape of `metav1.Condition`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Progressing` or `Degraded`.
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    /// A CamelCase word a program can match on.
    pub reason: String,
    /// What happened, for a human.
    #[serde(default)]
    pub message: String,
    /// The `metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

impl Condition {
    pub fn new(
        type_: &str,
        status: bool,
        reason: &str,
        message: impl Into<String>,
        generation: Option<i64>,
    ) -> Condition {
        Condition {
            type_: type_.to_string(),
            status: if status {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            },
            reason: reason.to_string(),
            message: message.into(),
            observed_generation: generation,
            last_transition_time: None,
        }
    }

    pub fn is_true(&self) -> bool {
        self.status == ConditionStatus::True
    }
}

/// The store a bucket or key belongs to. `namespace` defaults to the referring resource's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreRef {
    /// Name of the `ObjectStore`.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Namespace of the `ObjectStore`; defaults to the namespace of this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl StoreRef {
    /// The store's namespace, `own` when the reference names none.
    pub fn namespace_or<'a>(&'a self, own: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(own)
    }
}
