//! A rule's S3 object tags: `bucketlens:<rule>` = the matching labels, written beside
//! the object's other tags (read, changed, written back: S3 replaces the whole set)
//! and removed when the rule no longer matches.
//!
//! S3 allows 10 tags per object. An object that has 10 already keeps them all and
//! does not get the rule's: the action fails for good (dead-lettered, naming the
//! limit). Tag values hold the label names, highest confidence first, joined by
//! ` / `, cut at S3's 256 characters at a name's end; characters S3 refuses in a tag
//! (`&`, `'`, `,`…) become spaces.

use std::time::Duration;

use aws_sdk_s3::types::{Tag, Tagging};
use bucketlens_runtime::aws::AwsFailure;
use bucketlens_schemas::MatchedLabel;

/// Every tag key act writes starts with this.
pub const TAG_PREFIX: &str = "bucketlens:";
/// S3's limit of tags per object.
pub const MAX_TAGS: usize = 10;
const MAX_VALUE: usize = 256;
const ATTEMPTS: u32 = 5;

/// The tag value of `labels`.
pub fn value(labels: &[MatchedLabel]) -> String {
    let safe = |c: char| if c.is_alphanumeric() || " +-=._:/@".contains(c) { c } else { ' ' };
    let mut out = String::new();
    for label in labels {
        let name: String = label.name.chars().map(safe).collect();
        let next = if out.is_empty() { name } else { format!("{out} / {name}") };
        if next.chars().count() > MAX_VALUE {
            break;
        }
        out = next;
    }
    out
}

/// Why tagging failed for good.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TagError(pub String);

/// Writes or removes tags with one S3 client.
#[derive(Clone)]
pub struct Tagger {
    client: aws_sdk_s3::Client,
}

/// What a tagging call did.
#[derive(Debug, PartialEq, Eq)]
pub enum Tagged {
    Done,
    /// The object (version) is gone: there is nothing to tag or untag.
    Gone,
}

impl Tagger {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }

    /// Sets `key` = `value` on the object, keeping its other tags; `value` `None`
    /// removes `key`.
    pub async fn set(
        &self,
        (bucket, object, version_id): (&str, &str, Option<&str>),
        key: &str,
        value: Option<&str>,
    ) -> Result<Tagged, TagError> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            match self.try_set((bucket, object, version_id), key, value).await {
                Err(Failure::Retry(reason)) if attempt < ATTEMPTS => {
                    tracing::warn!(bucket, key = object, attempt, %reason, "tagging failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err(Failure::Retry(reason) | Failure::Fail(reason)) => {
                    return Err(TagError(format!("tagging s3://{bucket}/{object}: {reason}")))
                }
                Ok(done) => return Ok(done),
            }
        }
    }

    async fn try_set(
        &self,
        (bucket, object, version_id): (&str, &str, Option<&str>),
        key: &str,
        value: Option<&str>,
    ) -> Result<Tagged, Failure> {
        let got = self
            .client
            .get_object_tagging()
            .bucket(bucket)
            .key(object)
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await;
        let current = match got {
            Ok(out) => out.tag_set,
            Err(e) => return Failure::of(&AwsFailure::of(&e)),
        };
        let mut tags: Vec<Tag> = current.into_iter().filter(|t| t.key != key).collect();
        if let Some(value) = value {
            if tags.len() >= MAX_TAGS {
                let others: Vec<&str> = tags.iter().map(|t| t.key.as_str()).collect();
                return Err(Failure::Fail(format!(
                    "the object has {} tags already ({}), S3's limit of {MAX_TAGS} per object; {key} was not added \
                     and its tags are kept as they were (remove one of them, then run `act --from earliest`)",
                    others.len(),
                    others.join(", ")
                )));
            }
            let tag = Tag::builder().key(key).value(value).build().map_err(|e| Failure::Fail(e.to_string()))?;
            tags.push(tag);
        }
        let tagging = Tagging::builder().set_tag_set(Some(tags)).build().map_err(|e| Failure::Fail(e.to_string()))?;
        let put = self
            .client
            .put_object_tagging()
            .bucket(bucket)
            .key(object)
            .set_version_id(version_id.map(str::to_string))
            .tagging(tagging)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Tagged::Done),
            Err(e) => Failure::of(&AwsFailure::of(&e)),
        }
    }
}

enum Failure {
    Retry(String),
    Fail(String),
}

impl Failure {
    fn of(failure: &AwsFailure) -> Result<Tagged, Failure> {
        if matches!(failure.code.as_deref(), Some("NoSuchKey" | "NoSuchVersion")) || failure.status == Some(404) {
            return Ok(Tagged::Gone);
        }
        if failure.retryable {
            return Err(Failure::Retry(failure.to_string()));
        }
        Err(Failure::Fail(failure.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str) -> MatchedLabel {
        MatchedLabel { name: name.into(), confidence: 90.0 }
    }

    #[test]
    fn a_tag_value_holds_whole_label_names_s3_accepts() {
        assert_eq!(value(&[label("Cat"), label("Tabby Cat")]), "Cat / Tabby Cat");
        assert_eq!(value(&[label("Rock 'n' Roll, & Co")]), "Rock  n  Roll    Co");
        let many: Vec<MatchedLabel> = (0..100).map(|i| label(&format!("Label{i:03}"))).collect();
        let v = value(&many);
        assert!(v.chars().count() <= 256 && v.ends_with(|c: char| c.is_ascii_digit()), "{v}");
        assert_eq!(value(&[]), "");
    }
}
