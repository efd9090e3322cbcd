//! The two Services of a store: a headless one giving each server a stable DNS name for
//! peer traffic, and the client Service apps use.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::{
    client_service_name, headless_service_name, store_meta, RPC_PORT, S3_PORT, STORE_LABEL,
};
use crate::crd::ObjectStore;

fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

fn selector(store: &ObjectStore) -> std::collections::BTreeMap<String, String> {
    [(STORE_LABEL.to_string(), store.name_any())].into()
}

/// `<store>-hl`: headless, publishing servers before they are ready (peers must find each
/// other to reach the quorum that makes them ready).
pub fn headless_service(store: &ObjectStore) -> Service {
    Service {
        metadata: store_meta(store, headless_service_name(&store.name_any()), &[]),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector(store)),
            ports: Some(vec![port("s3", S3_PORT), port("rpc", RPC_PORT)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// `<store>`: the S3 endpoint, ready servers only.
pub fn client_service(store: &ObjectStore) -> Service {
    let spec = store.spec.service.clone().unwrap_or_default();
    let mut metadata = store_meta(store, client_service_name(&store.name_any()), &[]);
    if !spec.annotations.is_empty() {
        metadata.annotations = Some(spec.annotations);
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(spec.type_.unwrap_or_else(|| "ClusterIP".into())),
            selector: Some(selector(store)),
            ports: Some(vec![port("s3", S3_PORT)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
