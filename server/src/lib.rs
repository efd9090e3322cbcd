//! Coffer's S3 server. Layers, top to bottom (no layer reaches upward):
//! `http` (listener, routing, errors) → `auth` (SigV4) → `iam` (identities) → `s3` (S3
//! semantics) → `store` (object layer, drive, records). See ARCHITECTURE.md.

pub mod admin;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod heal;
pub mod http;
pub mod iam;
pub mod lifecycle;
pub mod metrics;
pub mod s3;
pub mod store;
