//! The unauthenticated endpoints for Kubernetes probes and Prometheus, on the S3 port under
//! the reserved `/_coffer/` prefix (bucket names cannot contain `_`): liveness, readiness
//! (ready only while this server's erasure set can reach a write quorum), and metrics.

use axum::body::Body;
use http::{header, HeaderValue, Method, Response, StatusCode};
use serde::Serialize;

use super::Context;
use crate::metrics::StateSample;

pub const LIVE: &str = "/_coffer/health/live";
pub const READY: &str = "/_coffer/health/ready";
pub const METRICS: &str = "/_coffer/metrics";

/// One of the endpoints of this module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Live,
    Ready,
    Metrics,
}

/// The endpoint `GET path` names, if any (exact paths only: anything else under
/// `/_coffer/` stays authenticated).
pub fn endpoint(method: &Method, path: &str) -> Option<Endpoint> {
    if method != Method::GET {
        return None;
    }
    match path {
        LIVE => Some(Endpoint::Live),
        READY => Some(Endpoint::Ready),
        METRICS => Some(Endpoint::Metrics),
        _ => None,
    }
}

/// Why this server is not ready.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct NotReady {
    pub reason: String,
    pub drives_online: usize,
    pub write_quorum: usize,
}

/// Ready when at least a write quorum of the set's drives is online.
pub fn readiness(drives_online: usize, write_quorum: usize) -> Result<(), NotReady> {
    if drives_online >= write_quorum {
        Ok(())
    } else {
        Err(NotReady {
            reason: format!(
                "{drives_online} drives online, fewer than the write quorum of {write_quorum}"
            ),
            drives_online,
            write_quorum,
        })
    }
}

pub fn handle(ctx: &Context, endpoint: Endpoint) -> Response<Body> {
    match endpoint {
        Endpoint::Live => text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
        Endpoint::Ready => {
            // Ready when every set can take writes: the worst set decides.
            let (online, quorum) = ctx
                .store
                .sets()
                .iter()
                .map(|s| (s.reachable_count(), s.write_quorum()))
                .min_by_key(|(online, quorum)| *online as isize - *quorum as isize)
                .expect("a store has a set");
            match readiness(online, quorum) {
                Ok(()) => text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
                Err(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "application/json",
                    serde_json::to_string(&why)
                        .expect("a struct of strings and numbers serializes"),
                ),
            }
        }
        Endpoint::Metrics => {
            let sample = sample(ctx);
            text(
                StatusCode::OK,
                crate::metrics::CONTENT_TYPE,
                ctx.metrics.render(&sample),
            )
        }
    }
}

/// The state gauges, read from the drive set, the scanner and the process.
fn sample(ctx: &Context) -> StateSample {
    let sets = ctx.store.sets();
    let online: usize = sets.iter().map(|s| s.reachable_count()).sum();
    let total: usize = sets.iter().map(|s| s.len()).sum();
    // Drives are numbered across sets (and pools), set after set.
    let firsts: Vec<usize> = sets
        .iter()
        .scan(0, |next, s| {
            let first = *next;
            *next += s.len();
            Some(first)
        })
        .collect();
    let rocksdb_live_bytes = sets
        .iter()
        .zip(firsts)
        .flat_map(|(set, first)| set.online().map(move |(i, slot)| (first + i, slot)))
        .filter_map(|(i, slot)| {
            match slot
                .local_db()?
                .property_int_value("rocksdb.estimate-live-data-size")
            {
                Ok(Some(v)) => Some((i, v)),
                Ok(None) => None,
                Err(e) => {
                    tracing::debug!(drive = i, error = %e, "RocksDB live-data estimate unavailable");
                    None
                }
            }
        })
        .collect();
    StateSample {
        drives_online: online as u64,
        drives_offline: (total - online) as u64,
        write_quorum: sets[0].write_quorum() as u64,
        heal: Some(ctx.heal.report(&ctx.store)),
        rocksdb_live_bytes,
        resident_bytes: crate::metrics::resident_bytes(),
        reconstructed_blocks: sets.iter().map(|s| s.reconstructed_blocks()).sum(),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_with_a_write_quorum_online() {
        // 4 drives, 2 parity: write quorum 3 (K == M needs K + 1).
        assert_eq!(readiness(4, 3), Ok(()));
        assert_eq!(readiness(3, 3), Ok(()));
        let why = readiness(2, 3).unwrap_err();
        assert_eq!((why.drives_online, why.write_quorum), (2, 3));
        assert!(why.reason.contains("write quorum"));
        // A single drive is its own quorum.
        assert_eq!(readiness(1, 1), Ok(()));
        assert!(readiness(0, 1).is_err());
    }

    #[test]
    fn only_exact_get_paths_are_health_endpoints() {
        assert_eq!(endpoint(&Method::GET, LIVE), Some(Endpoint::Live));
        assert_eq!(endpoint(&Method::GET, READY), Some(Endpoint::Ready));
        assert_eq!(endpoint(&Method::GET, METRICS), Some(Endpoint::Metrics));
        assert_eq!(endpoint(&Method::PUT, METRICS), None);
        assert_eq!(endpoint(&Method::GET, "/_coffer/metrics/"), None);
        assert_eq!(endpoint(&Method::GET, "/_coffer/health"), None);
        assert_eq!(endpoint(&Method::GET, "/_coffer/admin/v1/status"), None);
    }
}
