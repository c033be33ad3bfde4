//! Counters of `act`.

use bucketlens_runtime::metrics::{ByKind, Counter, Registry};

#[derive(Debug)]
pub struct Metrics {
    /// Records read from images.labeled.v1.
    pub records_in: Counter,
    /// Records that did not decode (the index sink dead-letters them).
    pub undecodable: Counter,
    /// Rule evaluations.
    pub evaluations: Counter,
    /// Objects a rule began to match, by rule.
    pub matches: ByKind,
    /// Objects a rule stopped matching, by rule.
    pub unmatches: ByKind,
    /// Actions done, by action (`tags`, `untag`, `webhook`, `topic`).
    pub actions: ByKind,
    /// Actions that failed for good and went to the dead-letter topic, by action.
    pub dead_lettered: ByKind,
    /// Tag actions on buckets that are folders (nothing to tag).
    pub tags_not_s3: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            records_in: Counter::default(),
            undecodable: Counter::default(),
            evaluations: Counter::default(),
            matches: ByKind::labelled("rule"),
            unmatches: ByKind::labelled("rule"),
            actions: ByKind::labelled("action"),
            dead_lettered: ByKind::labelled("action"),
            tags_not_s3: Counter::default(),
        }
    }
}

impl Metrics {
    pub fn register(&self, registry: &mut Registry) {
        self.records_in.register(registry, "act_records_in", "Records read from images.labeled.v1");
        self.undecodable.register(registry, "act_errors_undecodable", "Records that did not decode (skipped)");
        self.evaluations.register(registry, "act_evaluations", "Rule evaluations");
        self.matches.register(registry, "act_matches", "Objects a rule began to match, by rule");
        self.unmatches.register(registry, "act_unmatches", "Objects a rule stopped matching, by rule");
        self.actions.register(registry, "act_actions", "Actions done, by action");
        self.dead_lettered.register(registry, "act_dead_lettered", "Actions that failed for good (sent to the DLQ)");
        self.tags_not_s3.register(registry, "act_tags_not_s3", "Tag actions on buckets that are folders, not done");
    }
}
