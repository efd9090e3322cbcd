//! The image references of this release: the one place the operator's default server image,
//! the chart's `appVersion` (checked by a test) and the images `coffer-e2e image build` writes
//! take their version from — the workspace's version in `Cargo.toml`.

/// This release's version (the workspace's `version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Where released images are published.
pub const REPOSITORY: &str = "ghcr.io/coffer-dev";

/// `REPOSITORY/coffer-server:VERSION` under another repository (a registry of one's own).
pub fn server_image_in(repository: &str) -> String {
    format!(
        "{}/coffer-server:{VERSION}",
        repository.trim_end_matches('/')
    )
}

/// `REPOSITORY/coffer-operator:VERSION` under another repository.
pub fn operator_image_in(repository: &str) -> String {
    format!(
        "{}/coffer-operator:{VERSION}",
        repository.trim_end_matches('/')
    )
}

/// The image of an `ObjectStore` that names none, unless the operator is told otherwise
/// (`--server-image`, the chart's `serverImage`).
pub fn default_server_image() -> String {
    server_image_in(REPOSITORY)
}
