//! `[act]` and its `[[act.rules]]`: written as TOML, checked once into [`Settings`]
//! (every rule's query parsed, its actions typed). No IO here.

use std::collections::BTreeMap;
use std::time::Duration;

use bucketlens_index::Expr;
use bucketlens_runtime::config::{Invalid, Problems};
use serde::{Deserialize, Serialize};

/// `[act]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// The consumer group `act` reads images.labeled.v1 in.
    pub group: String,
    /// The key webhooks are signed with (HMAC-SHA256 of the body, in the
    /// `X-Bucketlens-Signature: sha256=<hex>` header); empty: not signed.
    pub webhook_secret: String,
    /// Attempts of one webhook post before the match goes to the dead-letter topic.
    pub webhook_attempts: u32,
    /// The wait before the second attempt; it doubles after each (at most 30 s).
    #[serde(with = "humantime_serde")]
    pub webhook_backoff: Duration,
    /// Per-request timeout of a webhook post.
    #[serde(with = "humantime_serde")]
    pub webhook_timeout: Duration,
    /// The standing queries.
    pub rules: Vec<RuleConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            group: "bucketlens-act".into(),
            webhook_secret: String::new(),
            webhook_attempts: 5,
            webhook_backoff: Duration::from_millis(500),
            webhook_timeout: Duration::from_secs(10),
            rules: Vec::new(),
        }
    }
}

/// One `[[act.rules]]` as written. Unknown keys are kept to be named, with the
/// rule, by [`Config::validate`] (serde's own refusal would say `act.rules[3]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RuleConfig {
    pub name: String,
    /// The search language (`weapon AND NOT toy`, `year:2024 receipt`).
    pub query: String,
    /// The minimum confidence (percent) of the labels the query asks for.
    #[serde(default)]
    pub min_confidence: f32,
    /// Write the rule (and the matching labels) as S3 object tags.
    #[serde(default)]
    pub s3_tags: bool,
    /// POST a signed JSON document here for each match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Produce an images.matched.v1 record per match (and unmatch) to this topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

/// A rule, checked.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// The query as written, for messages.
    pub query_text: String,
    pub query: Expr,
    pub min_confidence: f32,
    pub s3_tags: bool,
    pub webhook: Option<reqwest::Url>,
    pub topic: Option<String>,
}

impl Rule {
    /// The S3 tag key this rule writes: `bucketlens:<name>`.
    pub fn tag_key(&self) -> String {
        format!("{}{}", crate::tags::TAG_PREFIX, self.name)
    }
}

/// `[act]`, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub group: String,
    pub webhook_secret: String,
    pub webhook_attempts: u32,
    pub webhook_backoff: Duration,
    pub webhook_timeout: Duration,
    pub rules: Vec<Rule>,
    /// Partitions of a rule's topic when act creates it (`[log] partitions`).
    pub partitions: u32,
}

/// S3 allows these in tag keys (besides letters and digits, of any script).
const TAG_KEY_PUNCTUATION: &str = " +-=._:/@";
const KEYS: &str = "name, query, min-confidence, s3-tags, webhook, topic";

impl Config {
    /// Checks every rule (no IO): the settings, or every problem, each naming its rule.
    pub fn validate(&self) -> Result<Settings, Vec<Invalid>> {
        let mut problems = Problems::default();
        problems.check(!self.group.trim().is_empty(), "act.group", || "must not be empty".into());
        problems.check(self.webhook_attempts >= 1, "act.webhook-attempts", || {
            format!("must be at least 1, got {}", self.webhook_attempts)
        });
        let mut rules = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let at = if rule.name.is_empty() { format!("act.rules[{i}]") } else { format!("act.rules[{}]", rule.name) };
            for key in rule.unknown.keys() {
                problems.push(&at, format!("unknown key {key:?}; a rule's keys are {KEYS}"));
            }
            problems.check(seen.insert(rule.name.clone()), &at, || "two rules have this name".into());
            rules.extend(check_rule(rule, &at, &mut problems));
        }
        problems.finish(|| Settings {
            group: self.group.clone(),
            webhook_secret: self.webhook_secret.clone(),
            webhook_attempts: self.webhook_attempts,
            webhook_backoff: self.webhook_backoff,
            webhook_timeout: self.webhook_timeout,
            rules,
            partitions: 1,
        })
    }
}

fn check_rule(rule: &RuleConfig, at: &str, problems: &mut Problems) -> Option<Rule> {
    let name = rule.name.as_str();
    let tag_safe = |c: char| c.is_alphanumeric() || TAG_KEY_PUNCTUATION.contains(c);
    problems.check(!name.is_empty(), at, || format!("needs a name ({KEYS})"));
    problems.check(name.chars().all(tag_safe) && name.chars().count() <= 100, at, || {
        format!("the name {name:?} must be at most 100 letters, digits, spaces or {TAG_KEY_PUNCTUATION:?} (it is an S3 tag key)")
    });
    let query = match Expr::parse(&rule.query) {
        Ok(query) if !rule.query.trim().is_empty() => Some(query),
        Ok(_) => {
            problems.push(at, "needs a query (`*` for every labeled image)".into());
            None
        }
        Err(e) => {
            problems.push(at, e);
            None
        }
    };
    let min_confidence = problems.percent(&format!("{at}.min-confidence"), rule.min_confidence);
    let webhook = rule.webhook.as_deref().and_then(|url| match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Some(parsed),
        _ => {
            problems.push(&format!("{at}.webhook"), format!("must be an http:// or https:// URL, got {url:?}"));
            None
        }
    });
    if let Some(topic) = &rule.topic {
        let ok = !topic.is_empty()
            && topic.len() <= 249
            && topic.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        problems.check(ok, &format!("{at}.topic"), || {
            format!("{topic:?} is not a Kafka topic name (letters, digits, '.', '_', '-'; at most 249)")
        });
    }
    let acts = rule.s3_tags || rule.webhook.is_some() || rule.topic.is_some();
    problems.check(acts, at, || "does nothing: give it s3-tags = true, a webhook or a topic".into());
    Some(Rule {
        name: name.to_string(),
        query_text: rule.query.clone(),
        query: query?,
        min_confidence,
        s3_tags: rule.s3_tags,
        webhook: if rule.webhook.is_some() { Some(webhook?) } else { None },
        topic: rule.topic.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, query: &str) -> RuleConfig {
        RuleConfig {
            name: name.into(),
            query: query.into(),
            topic: Some("images.matched.v1".into()),
            ..RuleConfig::default()
        }
    }

    fn problems(config: &Config) -> Vec<String> {
        config.validate().err().unwrap_or_default().into_iter().map(|p| format!("{}: {}", p.key, p.problem)).collect()
    }

    #[test]
    fn a_good_rule_is_checked_into_a_parsed_query() {
        let config = Config { rules: vec![rule("weapons", "weapon AND NOT toy")], ..Config::default() };
        let settings = config.validate().unwrap();
        assert_eq!(settings.rules[0].tag_key(), "bucketlens:weapons");
        assert!(matches!(settings.rules[0].query, Expr::And(_)));
    }

    #[test]
    fn every_bad_rule_is_named_with_its_problem() {
        let mut unknown = rule("receipts", "receipt");
        unknown.unknown.insert("quer".into(), serde_json::json!("x"));
        let mut idle = rule("idle", "cat");
        idle.topic = None;
        let mut hook = rule("hook", "cat");
        hook.webhook = Some("ftp://example/x".into());
        let config = Config {
            rules: vec![
                rule("weapons", "weapon AND ("),
                unknown,
                idle,
                hook,
                rule("bad/name?", "cat"),
                rule("weapons", "x"),
            ],
            ..Config::default()
        };
        let found = problems(&config);
        let has = |needle: &str| found.iter().any(|p| p.contains(needle));
        assert!(has("act.rules[weapons]: invalid query"), "{found:?}");
        assert!(has("act.rules[receipts]: unknown key \"quer\""), "{found:?}");
        assert!(has("act.rules[idle]: does nothing"), "{found:?}");
        assert!(has("act.rules[hook].webhook: must be an http"), "{found:?}");
        assert!(has("act.rules[bad/name?]: the name"), "{found:?}");
        assert!(has("two rules have this name"), "{found:?}");
    }
}
