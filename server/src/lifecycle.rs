//! Bucket lifecycle: the rules of a `LifecycleConfiguration` document and the background
//! worker that applies them.
//!
//! Rules: a filter (prefix, tags, object size greater/less than, or `And` of them; the legacy
//! rule-level `Prefix` too), and actions: Expiration (days after creation, a date, or removal
//! of expired object delete markers), NoncurrentVersionExpiration (days after a version became
//! noncurrent, keeping the newest `NewerNoncurrentVersions`), AbortIncompleteMultipartUpload.
//!
//! The worker visits every bucket with a configuration at a bounded rate, one server at a time
//! (a cluster lock per bucket pass). Every action is idempotent and checked again under the
//! key's lock (an expiration only while the version it judged is still current; removals by
//! version id), so a pass interrupted by a crash and run again, or run twice, applies no rule
//! twice; nothing is remembered between passes, so restarts lose nothing. Object lock is
//! respected: a version it keeps is never removed. The length of a "day" is a server setting
//! (`--lifecycle-day-seconds`) so tests can run rules in seconds; the rule logic is the same.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::metrics::Metrics;
use crate::store::record::{VersionKind, VersionRecord};
use crate::store::{now_ns, BucketDocument, ListEntry, ListQuery, Store, StoreError};

/// S3's limit on rules per configuration.
const MAX_RULES: usize = 1000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LifecycleError {
    #[error("The XML you provided was not well-formed or did not validate against our published schema: {0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotImplemented(String),
}

#[derive(Deserialize)]
struct ConfigXml {
    #[serde(rename = "Rule", default)]
    rules: Vec<RuleXml>,
}

#[derive(Deserialize)]
struct RuleXml {
    #[serde(rename = "ID", default)]
    id: Option<String>,
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "Prefix", default)]
    prefix: Option<String>,
    #[serde(rename = "Filter", default)]
    filter: Option<FilterXml>,
    #[serde(rename = "Expiration", default)]
    expiration: Option<ExpirationXml>,
    #[serde(rename = "NoncurrentVersionExpiration", default)]
    noncurrent: Option<NoncurrentXml>,
    #[serde(rename = "AbortIncompleteMultipartUpload", default)]
    abort: Option<AbortXml>,
    #[serde(rename = "Transition", default)]
    transitions: Vec<IgnoredAny>,
    #[serde(rename = "NoncurrentVersionTransition", default)]
    noncurrent_transitions: Vec<IgnoredAny>,
}

#[derive(Deserialize, Default)]
struct FilterXml {
    #[serde(rename = "Prefix", default)]
    prefix: Option<String>,
    #[serde(rename = "Tag", default)]
    tag: Option<TagXml>,
    #[serde(rename = "ObjectSizeGreaterThan", default)]
    size_gt: Option<u64>,
    #[serde(rename = "ObjectSizeLessThan", default)]
    size_lt: Option<u64>,
    #[serde(rename = "And", default)]
    and: Option<AndXml>,
}

#[derive(Deserialize, Default)]
struct AndXml {
    #[serde(rename = "Prefix", default)]
    prefix: Option<String>,
    #[serde(rename = "Tag", default)]
    tags: Vec<TagXml>,
    #[serde(rename = "ObjectSizeGreaterThan", default)]
    size_gt: Option<u64>,
    #[serde(rename = "ObjectSizeLessThan", default)]
    size_lt: Option<u64>,
}

#[derive(Deserialize)]
struct TagXml {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value", default)]
    value: String,
}

#[derive(Deserialize)]
struct ExpirationXml {
    #[serde(rename = "Days", default)]
    days: Option<i64>,
    #[serde(rename = "Date", default)]
    date: Option<String>,
    #[serde(rename = "ExpiredObjectDeleteMarker", default)]
    expired_object_delete_marker: Option<bool>,
}

#[derive(Deserialize)]
struct NoncurrentXml {
    #[serde(rename = "NoncurrentDays", default)]
    days: Option<i64>,
    #[serde(rename = "NewerNoncurrentVersions", default)]
    newer: Option<i64>,
}

#[derive(Deserialize)]
struct AbortXml {
    #[serde(rename = "DaysAfterInitiation")]
    days: i64,
}

/// Which objects a rule applies to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub prefix: String,
    pub tags: Vec<(String, String)>,
    pub size_gt: Option<u64>,
    pub size_lt: Option<u64>,
}

impl Filter {
    fn matches_key(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
    }

    fn matches(&self, key: &str, v: &VersionRecord) -> bool {
        self.matches_key(key)
            && self.tags.iter().all(|t| v.tags.contains(t))
            && self.size_gt.is_none_or(|n| v.size > n)
            && self.size_lt.is_none_or(|n| v.size < n)
    }
}

/// One enabled rule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rule {
    pub id: String,
    pub filter: Filter,
    pub expiration_days: Option<u64>,
    /// Unix nanoseconds.
    pub expiration_date: Option<u64>,
    pub expired_object_delete_marker: bool,
    pub noncurrent_days: Option<u64>,
    pub newer_noncurrent: Option<usize>,
    pub abort_days: Option<u64>,
}

fn positive(n: i64, what: &str) -> Result<u64, LifecycleError> {
    u64::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
        LifecycleError::Invalid(format!("'{what}' for a rule must be a positive integer"))
    })
}

/// The enabled rules of a `LifecycleConfiguration` document, validated as S3 does.
pub fn parse(doc: &[u8]) -> Result<Vec<Rule>, LifecycleError> {
    let text = std::str::from_utf8(doc).map_err(|e| LifecycleError::Malformed(e.to_string()))?;
    let config: ConfigXml =
        quick_xml::de::from_str(text).map_err(|e| LifecycleError::Malformed(e.to_string()))?;
    if config.rules.is_empty() || config.rules.len() > MAX_RULES {
        return Err(LifecycleError::Malformed(format!(
            "a configuration has 1 to {MAX_RULES} rules"
        )));
    }
    let mut out = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for r in config.rules {
        let id = r.id.clone().unwrap_or_default();
        if id.len() > 255 {
            return Err(LifecycleError::Invalid(
                "ID length should not exceed allowed limit of 255".into(),
            ));
        }
        if !id.is_empty() {
            if ids.contains(&id) {
                return Err(LifecycleError::Invalid(
                    "Rule ID must be unique. Found same ID for more than one rule".into(),
                ));
            }
            ids.push(id.clone());
        }
        if !r.transitions.is_empty() || !r.noncurrent_transitions.is_empty() {
            return Err(LifecycleError::NotImplemented(
                "Transitions to other storage classes are not supported: Coffer has one storage class".into(),
            ));
        }
        let enabled = match r.status.trim() {
            "Enabled" => true,
            "Disabled" => false,
            _ => {
                return Err(LifecycleError::Malformed(
                    "Status must be Enabled or Disabled".into(),
                ))
            }
        };
        let filter = match (&r.prefix, r.filter) {
            (Some(_), Some(_)) => {
                return Err(LifecycleError::Malformed(
                    "a rule has either Prefix or Filter".into(),
                ))
            }
            (Some(p), None) => Filter {
                prefix: p.clone(),
                ..Filter::default()
            },
            (None, None) => Filter::default(),
            (None, Some(f)) => {
                let given = usize::from(f.prefix.is_some())
                    + usize::from(f.tag.is_some())
                    + usize::from(f.size_gt.is_some())
                    + usize::from(f.size_lt.is_some())
                    + usize::from(f.and.is_some());
                if given > 1 {
                    return Err(LifecycleError::Malformed(
                        "a Filter holds one condition; combine several with And".into(),
                    ));
                }
                match f.and {
                    Some(a) => Filter {
                        prefix: a.prefix.unwrap_or_default(),
                        tags: a.tags.into_iter().map(|t| (t.key, t.value)).collect(),
                        size_gt: a.size_gt,
                        size_lt: a.size_lt,
                    },
                    None => Filter {
                        prefix: f.prefix.unwrap_or_default(),
                        tags: f.tag.into_iter().map(|t| (t.key, t.value)).collect(),
                        size_gt: f.size_gt,
                        size_lt: f.size_lt,
                    },
                }
            }
        };
        if let (Some(gt), Some(lt)) = (filter.size_gt, filter.size_lt) {
            if gt >= lt {
                return Err(LifecycleError::Invalid(
                    "ObjectSizeGreaterThan must be less than ObjectSizeLessThan".into(),
                ));
            }
        }
        let mut rule = Rule {
            id,
            filter,
            ..Rule::default()
        };
        if let Some(e) = r.expiration {
            let given = usize::from(e.days.is_some())
                + usize::from(e.date.is_some())
                + usize::from(e.expired_object_delete_marker.is_some());
            if given != 1 {
                return Err(LifecycleError::Malformed(
                    "Expiration holds one of Days, Date or ExpiredObjectDeleteMarker".into(),
                ));
            }
            rule.expiration_days = e.days.map(|d| positive(d, "Days")).transpose()?;
            rule.expiration_date = match e.date {
                None => None,
                Some(d) => {
                    let t = OffsetDateTime::parse(d.trim(), &Rfc3339).map_err(|_| {
                        LifecycleError::Invalid("Date must be in ISO 8601 format".into())
                    })?;
                    if t.unix_timestamp() % 86_400 != 0 || t.nanosecond() != 0 {
                        return Err(LifecycleError::Invalid(
                            "'Date' must be at midnight GMT".into(),
                        ));
                    }
                    Some(u64::try_from(t.unix_timestamp_nanos()).unwrap_or(0))
                }
            };
            rule.expired_object_delete_marker = e.expired_object_delete_marker.unwrap_or(false);
            if rule.expired_object_delete_marker && !rule.filter.tags.is_empty() {
                return Err(LifecycleError::Invalid(
                    "ExpiredObjectDeleteMarker cannot be specified with object tag filters".into(),
                ));
            }
        }
        if let Some(n) = r.noncurrent {
            rule.noncurrent_days = Some(positive(n.days.unwrap_or(0), "NoncurrentDays")?);
            rule.newer_noncurrent = n
                .newer
                .map(|v| positive(v, "NewerNoncurrentVersions").map(|v| v as usize))
                .transpose()?;
        }
        if let Some(a) = r.abort {
            if !rule.filter.tags.is_empty()
                || rule.filter.size_gt.is_some()
                || rule.filter.size_lt.is_some()
            {
                return Err(LifecycleError::Invalid(
                    "AbortIncompleteMultipartUpload cannot be specified with tag or size filters"
                        .into(),
                ));
            }
            rule.abort_days = Some(positive(a.days, "DaysAfterInitiation")?);
        }
        if rule.expiration_days.is_none()
            && rule.expiration_date.is_none()
            && !rule.expired_object_delete_marker
            && rule.noncurrent_days.is_none()
            && rule.abort_days.is_none()
        {
            return Err(LifecycleError::Malformed(
                "a rule needs at least one action".into(),
            ));
        }
        if enabled {
            out.push(rule);
        }
    }
    Ok(out)
}

/// What one pass did, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub expired: u64,
    pub noncurrent_removed: u64,
    pub markers_removed: u64,
    pub uploads_aborted: u64,
    /// Due versions object lock kept.
    pub locked: u64,
}

/// How the worker runs.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// The length of a lifecycle "day".
    pub day: Duration,
    /// Time between two passes over the buckets.
    pub interval: Duration,
    /// Most actions per second.
    pub actions_per_second: u64,
}

impl Pace {
    /// The pace for a day of `day_seconds`: a pass every hour, or four a day when days are
    /// shorter than four hours (tests).
    pub fn for_day(day_seconds: u64) -> Pace {
        let day = Duration::from_secs(day_seconds.max(1));
        Pace {
            day,
            interval: (day / 4).clamp(Duration::from_millis(250), Duration::from_secs(3600)),
            actions_per_second: 100,
        }
    }

    fn due(&self, since_ns: u64, days: u64, now: u64) -> bool {
        let span = (self.day.as_nanos() as u64).saturating_mul(days);
        since_ns.saturating_add(span) <= now
    }

    fn breathe(&self) {
        std::thread::sleep(Duration::from_micros(
            1_000_000 / self.actions_per_second.max(1),
        ));
    }
}

/// One pass of a bucket's rules, at one moment.
struct Run<'a> {
    store: &'a Store,
    bucket: &'a str,
    rules: &'a [Rule],
    pace: &'a Pace,
    metrics: &'a Metrics,
    now: u64,
}

impl Run<'_> {
    /// Counts an action's outcome: done (in the report and in the server's metrics, as it
    /// happens, so progress shows during a long pass), already done by someone else, or kept
    /// by object lock.
    fn tally(
        &self,
        action: &'static str,
        result: Result<bool, StoreError>,
        count: &mut u64,
        locked: &mut u64,
    ) -> Result<(), StoreError> {
        match result {
            Ok(true) => {
                *count += 1;
                self.metrics.record_lifecycle_action(action);
            }
            Ok(false) => {}
            Err(StoreError::ObjectLocked(_)) => *locked += 1,
            Err(StoreError::NoSuchBucket) => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// Applies the rules of `run` to the versions of one key (newest first).
fn apply_to_key(
    run: &Run<'_>,
    key: &str,
    versions: &[VersionRecord],
    report: &mut PassReport,
) -> Result<(), StoreError> {
    let Run {
        store,
        bucket,
        rules,
        pace,
        now,
        ..
    } = *run;
    let Some(current) = versions.first() else {
        return Ok(());
    };
    // The current version expires when any rule says so.
    if current.kind == VersionKind::Object {
        let due = rules.iter().any(|r| {
            r.filter.matches(key, current)
                && (r
                    .expiration_days
                    .is_some_and(|d| pace.due(current.mod_time_ns, d, now))
                    || r.expiration_date.is_some_and(|d| d <= now))
        });
        if due {
            let result = store.expire_current(
                bucket,
                key,
                current.version_id.as_deref(),
                current.mod_time_ns,
            );
            run.tally("expired", result, &mut report.expired, &mut report.locked)?;
            pace.breathe();
        }
    }
    // Noncurrent versions: each became noncurrent when the next newer one was written.
    let mut position = 0usize;
    for pair in versions.windows(2) {
        let (newer, v) = (&pair[0], &pair[1]);
        if v.kind != VersionKind::Object {
            continue;
        }
        let due = rules.iter().any(|r| {
            r.filter.matches(key, v)
                && r.noncurrent_days
                    .is_some_and(|d| pace.due(newer.mod_time_ns, d, now))
                && r.newer_noncurrent.is_none_or(|keep| position >= keep)
        });
        position += 1;
        if due {
            let id = v.version_id.as_deref().unwrap_or("null");
            let result = store
                .delete_object(bucket, key, Some(id), false)
                .map(|_| true);
            run.tally(
                "noncurrent_removed",
                result,
                &mut report.noncurrent_removed,
                &mut report.locked,
            )?;
            pace.breathe();
        }
    }
    // A delete marker with no versions left behind it is removed.
    if versions.len() == 1 && current.kind == VersionKind::DeleteMarker {
        let due = rules
            .iter()
            .any(|r| r.expired_object_delete_marker && r.filter.matches_key(key));
        if due {
            let id = current.version_id.as_deref().unwrap_or("null");
            let result = store
                .delete_object(bucket, key, Some(id), false)
                .map(|_| true);
            run.tally(
                "marker_removed",
                result,
                &mut report.markers_removed,
                &mut report.locked,
            )?;
            pace.breathe();
        }
    }
    Ok(())
}

/// One pass of `rules` over `bucket`: its versions key by key, then its unfinished uploads.
pub fn apply(
    store: &Store,
    bucket: &str,
    rules: &[Rule],
    pace: &Pace,
    metrics: &Metrics,
) -> Result<PassReport, StoreError> {
    let now = now_ns();
    let run = Run {
        store,
        bucket,
        rules,
        pace,
        metrics,
        now,
    };
    let mut report = PassReport::default();
    // The versions of the key being gathered (a key's versions may span pages).
    let mut pending: Option<(String, Vec<VersionRecord>)> = None;
    store.for_each_version(bucket, |key, v| {
        match &mut pending {
            Some((k, vs)) if k == key => vs.push(v),
            _ => {
                if let Some((k, vs)) = pending.take() {
                    apply_to_key(&run, &k, &vs, &mut report)?;
                }
                pending = Some((key.to_string(), vec![v]));
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;
    if let Some((k, vs)) = pending.take() {
        apply_to_key(&run, &k, &vs, &mut report)?;
    }
    // Unfinished multipart uploads.
    let abort: Vec<&Rule> = rules.iter().filter(|r| r.abort_days.is_some()).collect();
    if !abort.is_empty() {
        let mut query = ListQuery {
            max_keys: 1000,
            ..ListQuery::default()
        };
        let mut after_id: Option<String> = None;
        loop {
            let page = store.list_uploads(bucket, &query, after_id.as_deref())?;
            for entry in &page.entries {
                let ListEntry::Item(key, u) = entry else {
                    continue;
                };
                let due = abort.iter().any(|r| {
                    r.filter.matches_key(key)
                        && r.abort_days
                            .is_some_and(|d| pace.due(u.initiated_ns, d, now))
                });
                if due {
                    match store.abort_upload(bucket, key, &u.upload_id) {
                        Ok(()) => {
                            report.uploads_aborted += 1;
                            metrics.record_lifecycle_action("upload_aborted");
                        }
                        Err(StoreError::NoSuchUpload) => {}
                        Err(e) => return Err(e),
                    }
                    pace.breathe();
                }
            }
            match page.entries.last() {
                Some(ListEntry::Item(key, u)) if page.truncated => {
                    query.start_after = Some(key.clone());
                    after_id = Some(u.upload_id.clone());
                }
                _ => break,
            }
        }
    }
    Ok(report)
}

/// One pass over every bucket with a lifecycle configuration, each under a cluster lock so
/// one server at a time works on a bucket (others skip it this round).
pub fn pass(store: &Store, pace: &Pace, metrics: &Metrics) -> Result<PassReport, StoreError> {
    let mut total = PassReport::default();
    for bucket in store.list_buckets()? {
        let Some(doc) = store.bucket_document(&bucket.name, BucketDocument::Lifecycle)? else {
            continue;
        };
        let rules = match parse(doc.as_bytes()) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(bucket = %bucket.name, error = %e, "stored lifecycle configuration refused");
                continue;
            }
        };
        if rules.is_empty() {
            continue;
        }
        let _lease = match store.lock_cluster(&format!("lifecycle\0{}", bucket.name)) {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(bucket = %bucket.name, error = %e, "another server runs this bucket's lifecycle");
                continue;
            }
        };
        let r = apply(store, &bucket.name, &rules, pace, metrics)?;
        if r != PassReport::default() {
            tracing::info!(bucket = %bucket.name, ?r, "lifecycle rules applied");
        }
        total.expired += r.expired;
        total.noncurrent_removed += r.noncurrent_removed;
        total.markers_removed += r.markers_removed;
        total.uploads_aborted += r.uploads_aborted;
        total.locked += r.locked;
    }
    Ok(total)
}

/// Starts the worker on its own thread: a pass every `pace.interval`.
pub fn spawn_worker(store: Arc<Store>, pace: Pace, metrics: Arc<Metrics>) {
    std::thread::Builder::new()
        .name("coffer-lifecycle".into())
        .spawn(move || loop {
            std::thread::sleep(pace.interval);
            if let Err(e) = pass(&store, &pace, &metrics) {
                tracing::warn!(error = %e, "lifecycle pass stopped; the next one starts over");
            }
        })
        .expect("spawning the lifecycle worker");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_with_every_filter_form() {
        let doc = br#"<LifecycleConfiguration>
          <Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>
            <Expiration><Days>30</Days></Expiration></Rule>
          <Rule><ID>tmp</ID><Filter><And><Prefix>tmp/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>
            <ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status>
            <NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays><NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>
          <Rule><ID>mpu</ID><Prefix></Prefix><Status>Enabled</Status>
            <AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation></AbortIncompleteMultipartUpload>
            <Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>
          <Rule><ID>off</ID><Filter/><Status>Disabled</Status><Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration></Rule>
        </LifecycleConfiguration>"#;
        let rules = parse(doc).unwrap();
        assert_eq!(rules.len(), 3, "the disabled rule is not applied");
        assert_eq!(rules[0].filter.prefix, "logs/");
        assert_eq!(rules[0].expiration_days, Some(30));
        assert_eq!(
            rules[1].filter.tags,
            vec![("k".to_string(), "v".to_string())]
        );
        assert_eq!(rules[1].filter.size_gt, Some(10));
        assert_eq!(
            (rules[1].noncurrent_days, rules[1].newer_noncurrent),
            (Some(2), Some(3))
        );
        assert_eq!(rules[2].abort_days, Some(7));
        assert!(rules[2].expired_object_delete_marker);
    }

    #[test]
    fn bad_rules_are_refused() {
        let rule = |body: &str| {
            format!("<LifecycleConfiguration><Rule><ID>r</ID><Status>Enabled</Status>{body}</Rule></LifecycleConfiguration>")
        };
        for (body, malformed) in [
            ("", true),
            ("<Expiration><Days>0</Days></Expiration>", false),
            ("<Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date></Expiration>", true),
            ("<Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration>", false),
            ("<Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Expiration><Days>1</Days></Expiration>", true),
            ("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>", false),
        ] {
            let e = parse(rule(body).as_bytes()).unwrap_err();
            assert_eq!(matches!(e, LifecycleError::Malformed(_)), malformed, "{body}: {e}");
        }
        let t = rule("<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>");
        assert!(matches!(
            parse(t.as_bytes()),
            Err(LifecycleError::NotImplemented(_))
        ));
        let twice = "<LifecycleConfiguration><Rule><ID>a</ID><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule><Rule><ID>a</ID><Status>Enabled</Status><Expiration><Days>2</Days></Expiration></Rule></LifecycleConfiguration>";
        assert!(matches!(
            parse(twice.as_bytes()),
            Err(LifecycleError::Invalid(_))
        ));
    }

    #[test]
    fn filters_match_prefix_tags_and_sizes() {
        let f = Filter {
            prefix: "logs/".into(),
            tags: vec![("tier".into(), "cold".into())],
            size_gt: Some(10),
            size_lt: Some(100),
        };
        let v = |size, tags: &[(&str, &str)]| VersionRecord {
            version_id: None,
            mod_time_ns: 0,
            kind: VersionKind::Object,
            size,
            etag: String::new(),
            meta: Default::default(),
            checksum: None,
            data: crate::store::record::DataLayout::Inline(Vec::new()),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            retention: None,
            legal_hold: false,
            set_index: 0,
        };
        assert!(f.matches("logs/a", &v(50, &[("tier", "cold"), ("x", "y")])));
        assert!(!f.matches("data/a", &v(50, &[("tier", "cold")])));
        assert!(!f.matches("logs/a", &v(50, &[("tier", "hot")])));
        assert!(!f.matches("logs/a", &v(10, &[("tier", "cold")])));
        assert!(!f.matches("logs/a", &v(100, &[("tier", "cold")])));
    }
}
