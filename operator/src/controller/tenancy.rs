//! Which namespaces may use a store: its own, those `spec.access.allowedNamespaces` names
//! (`*` for all) and those whose labels match `spec.access.namespaceSelector`. Checked before
//! a Bucket or AccessKey from another namespace touches the store, so no namespace can reach
//! a store that did not invite it (the confused deputy of issue 16).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::Api;
use kube::ResourceExt;

use super::{Context, Result};
use crate::crd::ObjectStore;

/// Whether `labels` satisfy `selector` (matchLabels and matchExpressions with In, NotIn,
/// Exists, DoesNotExist, as Kubernetes defines them). An empty selector matches everything.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_label = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expression = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    by_label && by_expression
}

/// Whether resources of namespace `ns` may use `store` (of namespace `store_ns`), when the
/// namespace carries `labels` (`None`: not known, so a selector cannot allow it).
pub fn namespace_allowed(
    store: &ObjectStore,
    store_ns: &str,
    ns: &str,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    if ns == store_ns {
        return true;
    }
    let Some(access) = &store.spec.access else {
        return false;
    };
    if access
        .allowed_namespaces
        .iter()
        .any(|n| n == "*" || n == ns)
    {
        return true;
    }
    match (&access.namespace_selector, labels) {
        (Some(selector), Some(labels)) => selector_matches(selector, labels),
        _ => false,
    }
}

/// `Ok(())` when namespace `ns` may use `store`, else the message of the refusal. Reads the
/// Namespace only when the store has a selector and the lists do not decide.
pub async fn check(
    ctx: &Context,
    store: &ObjectStore,
    store_ns: &str,
    ns: &str,
) -> Result<std::result::Result<(), String>> {
    if namespace_allowed(store, store_ns, ns, None) {
        return Ok(Ok(()));
    }
    let selector = store
        .spec
        .access
        .as_ref()
        .and_then(|a| a.namespace_selector.as_ref());
    if selector.is_some() {
        let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
        let labels = match namespaces.get_opt(ns).await {
            Ok(namespace) => namespace.map(|n| n.labels().clone()),
            // A namespaced install cannot read Namespaces: the selector cannot allow.
            Err(kube::Error::Api(e)) if e.code == 403 => None,
            Err(e) => return Err(e.into()),
        };
        if namespace_allowed(store, store_ns, ns, labels.as_ref()) {
            return Ok(Ok(()));
        }
    }
    Ok(Err(format!(
        "ObjectStore {store_ns}/{} does not allow resources of namespace {ns} (spec.access.allowedNamespaces, spec.access.namespaceSelector)",
        store.name_any()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::StoreAccess;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn a_store_serves_its_own_namespace_and_those_it_names_or_selects() {
        let store = ObjectStore::test();
        assert!(namespace_allowed(&store, "media", "media", None));
        assert!(!namespace_allowed(&store, "media", "team-a", None));
        let named = ObjectStore::test().allowing(&["team-a"]);
        assert!(namespace_allowed(&named, "media", "team-a", None));
        assert!(!namespace_allowed(&named, "media", "team-b", None));
        assert!(namespace_allowed(
            &ObjectStore::test().allowing(&["*"]),
            "media",
            "anyone",
            None
        ));
        let mut selected = ObjectStore::test();
        selected.spec.access = Some(StoreAccess {
            namespace_selector: Some(LabelSelector {
                match_labels: Some([("tenant".to_string(), "yes".to_string())].into()),
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "NotIn".into(),
                    values: Some(vec!["untrusted".into()]),
                }]),
            }),
            ..StoreAccess::default()
        });
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(namespace_allowed(
            &selected,
            "media",
            "team-c",
            Some(&labels(&[("tenant", "yes")]))
        ));
        assert!(!namespace_allowed(
            &selected,
            "media",
            "team-c",
            Some(&labels(&[("tenant", "yes"), ("tier", "untrusted")]))
        ));
        assert!(!namespace_allowed(&selected, "media", "team-c", None));
    }
}
