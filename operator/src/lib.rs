//! The Coffer operator: custom resources (`crd`), pure desired-state builders (`resources`),
//! one reconciler per kind (`controller`), the admin API access (`admin`), and what the
//! binary serves besides (`metrics`, `http`, `leader`). See ARCHITECTURE.md, "Operator".

pub mod admin;
pub mod controller;
pub mod crd;
pub mod http;
pub mod images;
pub mod leader;
pub mod metrics;
pub mod resources;

#[cfg(test)]
mod fixtures;
