//! Quorum calls: one call per drive (or server) in parallel, returning once enough of them
//! succeeded and the rest had a short grace to catch up. A drive that is slow or hung (a
//! frozen peer keeps its sockets open, so nothing fails fast) then costs a request that grace,
//! not a peer timeout.
//!
//! The calls run on a fixed pool of drive workers ([`WORKERS`] threads, started once, asleep
//! while idle), never a thread per call: spawning and joining a thread for each drive of each
//! call cost more than a small read itself. (A work-stealing pool such as rayon's was tried:
//! its idle workers spin, and burned a quarter of a server's CPU under small GETs.) The caller
//! waits on its own (blocking) thread, never a runtime worker.
//!
//! A call left behind is told so through a token on its worker ([`left_behind`]): the peer
//! client's waits end at once with [`LeftBehind`], the call returns an error, and the caller
//! treats that drive as one that failed (a write queues it for the missed-write healer).

use std::cell::RefCell;
use std::sync::{mpsc, LazyLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// The least grace the slower calls get once a quorum answered. Healthy drives answer in
/// milliseconds; a busy one that misses this only costs a heal of what it missed.
pub const MIN_GRACE: Duration = Duration::from_millis(250);

/// Drive workers. A call holds one while its drive answers (a local RocksDB or file operation,
/// or a wait for a peer); calls beyond this many queue. Calls left behind end at once, so a
/// hung peer holds workers for a grace, not a timeout.
pub const WORKERS: usize = 96;

static POOL: LazyLock<yastl::Pool> = LazyLock::new(|| {
    yastl::Pool::with_config(WORKERS, yastl::ThreadConfig::new().prefix("coffer-drive"))
});

thread_local! {
    static TOKEN: RefCell<Option<CancellationToken>> = const { RefCell::new(None) };
}

/// The token of the quorum call running on this thread, if any: cancelled once the call is no
/// longer waited for.
pub fn left_behind() -> Option<CancellationToken> {
    TOKEN.with(|t| t.borrow().clone())
}

/// A wait given up because the quorum call it served returned without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeftBehind;

impl std::fmt::Display for LeftBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("left behind: a quorum of the other drives answered first")
    }
}

/// How long the calls still running get once a quorum succeeded `to_quorum` after the start.
pub fn grace(to_quorum: Duration) -> Duration {
    (to_quorum * 2).max(MIN_GRACE)
}

/// Runs `f(0) … f(n-1)` on the drive workers and returns their results in order, waiting for
/// every one of them.
pub fn all<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    run(n, n, |_| true, |_| false, f)
}

/// Runs `f(0) … f(n-1)` on the drive workers and returns their results in order. Once
/// `need` results are `ok`, the calls still running get a [`grace`] — none when every one of
/// them is `quiet` (its server answered nothing lately) — and then their tokens are cancelled
/// and they must return promptly (with an error), which is what every peer wait does. Local
/// calls are not interruptible; they are not the ones that hang.
pub fn run<T: Send>(
    n: usize,
    need: usize,
    ok: impl Fn(&T) -> bool + Sync,
    quiet: impl Fn(usize) -> bool,
    f: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let started = Instant::now();
    let token = CancellationToken::new();
    let (tx, rx) = mpsc::channel();
    let f = &f;
    // Every call has returned when the scope ends; a call that panicked is re-raised here
    // (the worker itself lives on).
    let results = POOL.scoped(|scope| {
        for i in 0..n {
            let (tx, token) = (tx.clone(), token.clone());
            scope.execute(move || {
                TOKEN.with(|t| *t.borrow_mut() = Some(token));
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i)));
                TOKEN.with(|t| *t.borrow_mut() = None);
                let _ = tx.send((i, r));
            });
        }
        drop(tx);
        let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
        let (mut got, mut good) = (0, 0);
        let mut deadline: Option<Instant> = None;
        while got < n {
            let next = match deadline {
                None => rx.recv().ok(),
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(m) => Some(m),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        token.cancel();
                        deadline = None;
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => None,
                },
            };
            let Some((i, r)) = next else { break };
            let r = match r {
                Ok(r) => r,
                Err(panic) => {
                    token.cancel();
                    std::panic::resume_unwind(panic)
                }
            };
            let good_now = ok(&r);
            out[i] = Some(r);
            got += 1;
            good += usize::from(good_now);
            if good >= need && got < n && !token.is_cancelled() {
                if (0..n).filter(|&j| out[j].is_none()).all(&quiet) {
                    token.cancel();
                    deadline = None;
                } else if deadline.is_none() {
                    deadline = Some(Instant::now() + grace(started.elapsed()));
                }
            }
        }
        token.cancel();
        out
    });
    results
        .into_iter()
        .map(|r| r.expect("every call returned"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call that waits for its token the way a peer wait does, up to `hang`.
    fn hanging(hang: Duration) -> Result<(), LeftBehind> {
        let token = left_behind().expect("quorum calls carry a token");
        let start = Instant::now();
        while start.elapsed() < hang {
            if token.is_cancelled() {
                return Err(LeftBehind);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    #[test]
    fn a_hung_call_is_left_behind_once_a_quorum_answered() {
        // Drive 3 is a little slower than the quorum and makes it within the grace; drive 2
        // hangs and is left behind.
        let results = run(
            5,
            3,
            Result::is_ok,
            |_| false,
            |i| {
                hanging(match i {
                    2 => Duration::from_secs(30),
                    3 => Duration::from_millis(60),
                    _ => Duration::ZERO,
                })
            },
        );
        assert_eq!(
            results,
            vec![Ok(()), Ok(()), Err(LeftBehind), Ok(()), Ok(())]
        );
    }

    #[test]
    fn without_a_quorum_every_call_is_waited_for() {
        let results = run(
            3,
            3,
            Result::is_ok,
            |_| false,
            |i| hanging(Duration::from_millis(if i == 0 { 400 } else { 0 })),
        );
        assert_eq!(results, vec![Ok(()), Ok(()), Ok(())]);
        let failed = run(
            3,
            2,
            Result::is_ok,
            |_| false,
            |i| {
                if i == 0 {
                    Err(LeftBehind)
                } else {
                    hanging(Duration::from_millis(300))
                }
            },
        );
        assert_eq!(failed, vec![Err(LeftBehind), Ok(()), Ok(())]);
    }

    #[test]
    fn a_quiet_drive_gets_no_grace() {
        // Drive 1 is quiet and slower than the grace; with a quorum in, it is not waited for.
        let results = run(
            3,
            2,
            Result::is_ok,
            |i| i == 1,
            |i| {
                hanging(if i == 1 {
                    MIN_GRACE / 2
                } else {
                    Duration::ZERO
                })
            },
        );
        assert_eq!(results, vec![Ok(()), Err(LeftBehind), Ok(())]);
        // Quiet or not, a drive the quorum needs is waited for.
        let results = run(
            3,
            3,
            Result::is_ok,
            |i| i == 1,
            |i| {
                hanging(if i == 1 {
                    MIN_GRACE * 2
                } else {
                    Duration::ZERO
                })
            },
        );
        assert_eq!(results, vec![Ok(()), Ok(()), Ok(())]);
    }

    #[test]
    fn calls_outside_a_quorum_call_have_no_token() {
        assert!(left_behind().is_none());
    }
}
