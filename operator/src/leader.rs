//! Optional leader election through a `coordination.k8s.io/v1` Lease, so two replicas can
//! run with one reconciling, written as client-go's elector is (kube-rs has none):
//!
//! - the holder renews every `retry_period` with an update conditional on the
//!   resourceVersion it read, and **steps down** (`keep` returns, the binary exits) when no
//!   renewal succeeded for `renew_deadline` — each call bounded by what is left of it, so a
//!   hung API call cannot keep an old leader acting;
//! - another replica takes the Lease over only after the record (holder, renew time,
//!   resourceVersion) stayed unchanged for `lease_duration` **as measured by its own
//!   monotonic clock** from when it first saw that record. The holder's `renewTime` is never
//!   compared with the local clock, so neither a skewed clock on either side nor a slow
//!   network hands over a Lease that is being renewed.
//!
//! `renew_deadline < lease_duration` leaves the margin: a holder that cannot renew stops
//! acting before anyone may take over.

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::time::Instant;

pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
    /// The other holder's record as last seen, and when (locally) it was first seen so.
    observed: Mutex<Option<(String, Instant)>>,
}

impl LeaderElection {
    /// An elector for Lease `name`; `renew_deadline` must be shorter than `lease_duration`.
    pub fn new(
        api: Api<Lease>,
        name: &str,
        identity: &str,
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> LeaderElection {
        assert!(
            renew_deadline < lease_duration,
            "the renew deadline must be shorter than the lease, or a stale leader could act after a takeover"
        );
        LeaderElection {
            api,
            name: name.into(),
            identity: identity.into(),
            lease_duration,
            renew_deadline,
            retry_period,
            observed: Mutex::new(None),
        }
    }

    /// client-go's defaults: a 15 s lease, renewed every 2 s, given up after 10 s.
    pub fn with_defaults(api: Api<Lease>, name: &str, identity: &str) -> LeaderElection {
        Self::new(
            api,
            name,
            identity,
            Duration::from_secs(15),
            Duration::from_secs(10),
            Duration::from_secs(2),
        )
    }

    /// Tries once to hold the Lease: creates it, renews it when we hold it, or takes it over
    /// when its record has not changed for a lease duration of our own clock. Returns
    /// whether we hold it now.
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        // Written for people and other tools; never compared with anyone's clock here.
        let now = MicroTime(jiff::Timestamp::now());
        let spec = |transitions: i32, acquired: Option<MicroTime>| LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.lease_duration.as_secs().max(1) as i32),
            acquire_time: acquired.or(Some(now.clone())),
            renew_time: Some(now.clone()),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        };
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec(0, None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let current = lease.spec.clone().unwrap_or_default();
        let holder = current.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.identity;
        if !ours && !holder.is_empty() {
            let record = format!(
                "{holder}|{:?}|{}",
                current.renew_time.as_ref().map(|t| t.0),
                lease.metadata.resource_version.clone().unwrap_or_default()
            );
            // The holder's own lease duration when it says one, else ours.
            let duration = current
                .lease_duration_seconds
                .map(|s| Duration::from_secs(s.max(0) as u64))
                .unwrap_or(self.lease_duration);
            let mut observed = self.observed.lock().expect("the lock is never poisoned");
            let expired = match &*observed {
                Some((seen, since)) if *seen == record => since.elapsed() >= duration,
                _ => {
                    *observed = Some((record, Instant::now()));
                    false
                }
            };
            if !expired {
                return Ok(false);
            }
        }
        let transitions = current.lease_transitions.unwrap_or(0) + i32::from(!ours);
        lease.spec = Some(spec(
            transitions,
            if ours { current.acquire_time } else { None },
        ));
        // replace() carries the resourceVersion we read: if another replica wrote in between,
        // the API server refuses with 409 and we did not get the Lease.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election failed; retrying"),
            }
            tokio::time::sleep(self.retry_period).await;
        }
    }

    /// Renews the Lease (just acquired) until it is lost — another replica holds it, or no
    /// renewal succeeded within the renew deadline — then returns, so the caller stops before
    /// another replica may take over. Each call gets only what is left of the deadline.
    pub async fn keep(&self) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.retry_period).await;
            let left = self.renew_deadline.saturating_sub(renewed.elapsed());
            if left.is_zero() {
                tracing::warn!("no renewal of the leader Lease within the renew deadline");
                return;
            }
            let started = Instant::now();
            match tokio::time::timeout(left, self.try_acquire()).await {
                Ok(Ok(true)) => renewed = started,
                Ok(Ok(false)) => {
                    tracing::warn!("another replica holds the leader Lease");
                    return;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "could not renew the leader Lease"),
                Err(_) => tracing::warn!("renewing the leader Lease did not answer in time"),
            }
            if renewed.elapsed() >= self.renew_deadline {
                tracing::warn!("no renewal of the leader Lease within the renew deadline");
                return;
            }
        }
    }
}
