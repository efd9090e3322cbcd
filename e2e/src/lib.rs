//! Coffer's end-to-end harness: real servers run as child processes
//! (`server`), the peer tools built from Go modules (`go_tools`), warp
//! workloads and their results (`warp`), the benchmark that compares Coffer
//! with MinIO (`bench`) and its report (`report`), and a Kubernetes cluster on
//! this machine (`k8s`: a real control plane and a process kubelet). The
//! client-compatibility tests live in `tests/compat.rs` with their scripts in
//! `compat/`, the Kubernetes scenarios in `tests/k8s.rs`.

pub mod bench;
pub mod cluster;
pub mod cluster_pki;
pub mod go_tools;
pub mod image;
pub mod k8s;
pub mod report;
pub mod server;
pub mod warp;
