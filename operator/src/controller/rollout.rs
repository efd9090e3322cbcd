//! The rolling image change: which server to replace next, if any. Pure, so the rule "one
//! server at a time, and only while the store is whole" is tested as data.

/// What the admin APIs of a store's servers say, summed over the servers that answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// Drives the spec asks for, over all pools.
    pub drives_total: usize,
    /// Drives reported online by a server that answered.
    pub drives_online: usize,
    /// Drives reported online by every server that answered (of their pool): a server that
    /// still counts a returning peer as down writes to fewer drives, so taking another server
    /// down then could leave it below its write quorum.
    pub drives_online_everywhere: usize,
    /// Drives of servers that report healing under way.
    pub drives_healing: usize,
    /// The smallest write quorum any server reported.
    pub write_quorum: Option<usize>,
    /// Every server that answered reported fewer drives online than its write quorum: no
    /// server can take a write. (One server alone short of its quorum, e.g. while it starts
    /// and its peers do not answer it yet, leaves the others serving.)
    pub quorum_lost: bool,
    /// Servers whose admin API answered.
    pub servers_answered: usize,
}

impl StoreHealth {
    /// Every drive online as every server sees it, and nothing healing: a server may be
    /// taken down.
    pub fn whole(&self) -> bool {
        self.drives_total > 0
            && self.drives_online == self.drives_total
            && self.drives_online_everywhere == self.drives_total
            && self.drives_healing == 0
    }
}

/// One pod of the store as the rollout sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerPod {
    pub name: String,
    /// Index of the pod's pool in the spec.
    pub pool: usize,
    pub ordinal: i32,
    pub ready: bool,
    /// A container of the pod runs: its server answers the admin API, ready or not.
    pub running: bool,
    pub deleting: bool,
    /// The pod's `controller-revision-hash` label.
    pub revision: String,
    /// Its StatefulSet's `status.updateRevision`, once that status describes the current
    /// template.
    pub update_revision: String,
    /// Its StatefulSet's controller has not observed the latest template yet
    /// (`status.observedGeneration < metadata.generation`): the status, `updateRevision`
    /// included, still describes the previous one, so which pods are outdated is unknown.
    pub template_pending: bool,
}

impl ServerPod {
    /// The pod does not run its StatefulSet's current template, or may not: until the
    /// StatefulSet controller observed a new template, every pod of the pool counts as
    /// outdated, so no status says the rollout is done before it started.
    pub fn outdated(&self) -> bool {
        self.template_pending
            || (!self.update_revision.is_empty() && self.revision != self.update_revision)
    }
}

/// The pod to delete now so the StatefulSet recreates it from the new template, or `None`:
/// nothing outdated, or the store is not whole yet (a server missing, not ready, being
/// replaced or not answering its admin API, a drive offline to some server, healing under
/// way — a server that came back catching up included). Within a pool the highest ordinal
/// goes first, pools in spec order.
pub fn next_pod_to_replace(
    pods: &[ServerPod],
    expected_servers: usize,
    health: &StoreHealth,
) -> Option<String> {
    let mut outdated: Vec<&ServerPod> = pods.iter().filter(|p| p.outdated()).collect();
    // Before its StatefulSet controller caught up, a pool's update revision is unknown: a pod
    // deleted now could come back from the old template.
    if outdated.is_empty() || pods.iter().any(|p| p.template_pending) {
        return None;
    }
    let settled = pods.len() == expected_servers && pods.iter().all(|p| p.ready && !p.deleting);
    if !settled || health.servers_answered < expected_servers || !health.whole() {
        return None;
    }
    outdated.sort_by_key(|p| (p.pool, std::cmp::Reverse(p.ordinal)));
    Some(outdated[0].name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(pool: usize, ordinal: i32, revision: &str) -> ServerPod {
        ServerPod {
            name: format!("photos-p{pool}-{ordinal}"),
            pool,
            ordinal,
            ready: true,
            running: true,
            deleting: false,
            revision: revision.into(),
            update_revision: "v2".into(),
            template_pending: false,
        }
    }

    fn whole() -> StoreHealth {
        StoreHealth {
            drives_total: 8,
            drives_online: 8,
            drives_online_everywhere: 8,
            servers_answered: 4,
            write_quorum: Some(5),
            ..StoreHealth::default()
        }
    }

    #[test]
    fn one_server_at_a_time_highest_ordinal_first() {
        let pods = vec![
            pod(0, 0, "v1"),
            pod(0, 1, "v1"),
            pod(0, 2, "v2"),
            pod(0, 3, "v2"),
        ];
        assert_eq!(
            next_pod_to_replace(&pods, 4, &whole()).as_deref(),
            Some("photos-p0-1")
        );
    }

    #[test]
    fn waits_while_a_server_is_missing_unready_or_being_replaced() {
        let mut pods = vec![
            pod(0, 0, "v1"),
            pod(0, 1, "v1"),
            pod(0, 2, "v2"),
            pod(0, 3, "v2"),
        ];
        assert_eq!(next_pod_to_replace(&pods[..3], 4, &whole()), None);
        pods[3].ready = false;
        assert_eq!(next_pod_to_replace(&pods, 4, &whole()), None);
        pods[3].ready = true;
        pods[1].deleting = true;
        assert_eq!(next_pod_to_replace(&pods, 4, &whole()), None);
    }

    #[test]
    fn waits_while_a_drive_is_offline_or_healing() {
        let pods = vec![pod(0, 0, "v1"), pod(0, 1, "v2")];
        let offline = StoreHealth {
            drives_online: 7,
            ..whole()
        };
        assert_eq!(next_pod_to_replace(&pods, 2, &offline), None);
        let healing = StoreHealth {
            drives_healing: 2,
            ..whole()
        };
        assert_eq!(next_pod_to_replace(&pods, 2, &healing), None);
        assert_eq!(next_pod_to_replace(&pods, 2, &StoreHealth::default()), None);
        assert_eq!(
            next_pod_to_replace(&pods, 2, &whole()).as_deref(),
            Some("photos-p0-0")
        );
    }

    #[test]
    fn waits_until_a_returning_server_caught_up_and_every_server_sees_it() {
        let pods = vec![
            pod(0, 0, "v1"),
            pod(0, 1, "v1"),
            pod(0, 2, "v2"),
            pod(0, 3, "v2"),
        ];
        // The server replaced last is Ready but still copies what it missed.
        let catching_up = StoreHealth {
            drives_healing: 2,
            ..whole()
        };
        assert_eq!(next_pod_to_replace(&pods, 4, &catching_up), None);
        // It answers, but another server has not seen it back yet.
        let stale_view = StoreHealth {
            drives_online_everywhere: 6,
            ..whole()
        };
        assert_eq!(next_pod_to_replace(&pods, 4, &stale_view), None);
        // A ready server whose admin API did not answer is not known to be whole.
        let silent = StoreHealth {
            servers_answered: 3,
            ..whole()
        };
        assert_eq!(next_pod_to_replace(&pods, 4, &silent), None);
        assert_eq!(
            next_pod_to_replace(&pods, 4, &whole()).as_deref(),
            Some("photos-p0-1")
        );
    }

    #[test]
    fn no_server_is_replaced_before_the_statefulset_observed_the_new_template() {
        // The PATCH answer still carries the old status: every pod matches the old update
        // revision. Until observedGeneration catches up they all count as outdated, and none
        // is deleted yet.
        let mut pods = vec![pod(0, 0, "v2"), pod(0, 1, "v2")];
        for p in &mut pods {
            p.template_pending = true;
        }
        assert!(pods.iter().all(ServerPod::outdated));
        assert_eq!(next_pod_to_replace(&pods, 2, &whole()), None);
    }

    #[test]
    fn nothing_to_do_when_every_server_runs_the_new_template() {
        let pods = vec![pod(0, 0, "v2"), pod(1, 0, "v2")];
        assert_eq!(next_pod_to_replace(&pods, 2, &whole()), None);
    }
}
