//! One reconciler per kind, in the kube-rs controller-rs shape: `reconcile(Arc<K>,
//! Arc<Context>) -> Result<Action, Error>` wrapped in a finalizer, an `error_policy` that
//! requeues, status written with server-side apply, Events on transitions, and metrics with
//! an error label. Shared pieces (context, errors, apply-if-changed, conditions) live here.

mod access_key;
mod apply;
mod bucket;
mod claims;
mod object_store;
mod rollout;
mod tenancy;

pub use access_key::reconcile as reconcile_access_key;
pub use apply::{apply_if_changed, json_contains, merge_conditions};
pub use bucket::{bucket_owner, reconcile as reconcile_bucket};
pub use object_store::reconcile as reconcile_store;
pub use rollout::{next_pod_to_replace, StoreHealth};
pub use tenancy::{namespace_allowed, selector_matches};

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};

use crate::admin::{AdminAccess, AdminError};
use crate::crd::{AccessKey, Bucket, ObjectStore};
use crate::metrics::Metrics;

pub const STORE_FINALIZER: &str = "coffer.dev/storage";
pub const BUCKET_FINALIZER: &str = "coffer.dev/bucket";
pub const KEY_FINALIZER: &str = "coffer.dev/access-key";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("admin API: {0}")]
    Admin(#[from] AdminError),
    #[error("finalizer: {0}")]
    Finalizer(Box<kube::runtime::finalizer::Error<Error>>),
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The `error` label of the reconcile error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Admin(_) => "admin",
            Error::Finalizer(_) => "finalizer",
            Error::Invalid(_) => "invalid",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What every reconcile gets: the client, where to reach stores' admin APIs, metrics, the
/// event reporter, and the cache of Bucket resources (to find which one owns a bucket name).
pub struct Context {
    pub client: Client,
    pub admin: AdminAccess,
    pub metrics: Arc<Metrics>,
    pub reporter: Reporter,
    pub buckets: Store<Bucket>,
    /// The image of a store that names none (`--server-image`).
    pub server_image: String,
}

impl Context {
    /// The image `store`'s servers run: its own, or the operator's default.
    pub fn image_of(&self, store: &ObjectStore) -> String {
        store
            .spec
            .image
            .clone()
            .unwrap_or_else(|| self.server_image.clone())
    }

    /// Publishes an Event about `obj`. Failing to publish is logged, not an error: events
    /// are informative, and a reconcile must not fail because of one.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(reason, error = %e, "could not publish an event");
        }
    }
}

/// Requeue after an error: soon, but not in a tight loop.
fn error_policy<K>(_obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %error, "reconcile failed");
    ctx.metrics.reconcile_error(error.metric_label());
    Action::requeue(Duration::from_secs(15))
}

/// Runs the three controllers until `shutdown` resolves. `namespaces` empty: every namespace.
pub async fn run(
    client: Client,
    namespaces: Vec<String>,
    admin: AdminAccess,
    metrics: Arc<Metrics>,
    reporter: Reporter,
    server_image: String,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + Clone + 'static,
) {
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    let mut tasks = Vec::new();
    for ns in scopes {
        let api = |client: &Client| -> (Api<ObjectStore>, Api<Bucket>, Api<AccessKey>) {
            match &ns {
                Some(ns) => (
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                ),
                None => (
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                ),
            }
        };
        let (stores, buckets, keys) = api(&client);
        let bucket_controller = Controller::new(buckets, watcher::Config::default().any_semantic());
        let ctx = Arc::new(Context {
            client: client.clone(),
            admin: admin.clone(),
            metrics: metrics.clone(),
            reporter: reporter.clone(),
            buckets: bucket_controller.store(),
            server_image: server_image.clone(),
        });
        let owned: Api<k8s_openapi::api::apps::v1::StatefulSet> = match &ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let pods: Api<k8s_openapi::api::core::v1::Pod> = match &ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let c = ctx.clone();
        let s = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            Controller::new(stores, watcher::Config::default().any_semantic())
                .owns(owned, watcher::Config::default().any_semantic())
                // A server's pod being deleted or turning unready is news for its store's
                // status at once: the StatefulSet's status may not change at all before a
                // quickly replaced pod is back.
                .watches(
                    pods,
                    watcher::Config::default()
                        .labels(crate::resources::STORE_LABEL)
                        .any_semantic(),
                    |pod| {
                        let store = pod.labels().get(crate::resources::STORE_LABEL)?.clone();
                        Some(
                            kube::runtime::reflector::ObjectRef::new(&store)
                                .within(&pod.namespace()?),
                        )
                    },
                )
                .graceful_shutdown_on(s)
                .run(reconcile_store, error_policy, c)
                .for_each(|_| futures::future::ready(()))
                .await
        }));
        let c = ctx.clone();
        let s = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            bucket_controller
                .graceful_shutdown_on(s)
                .run(reconcile_bucket, error_policy, c)
                .for_each(|_| futures::future::ready(()))
                .await
        }));
        let c = ctx.clone();
        let s = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            Controller::new(keys, watcher::Config::default().any_semantic())
                .graceful_shutdown_on(s)
                .run(reconcile_access_key, error_policy, c)
                .for_each(|_| futures::future::ready(()))
                .await
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[cfg(test)]
mod tests;
