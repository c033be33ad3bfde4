//! `act`: standing queries on the label log. Each `[[act.rules]]` is a query of the
//! search language; when a label record makes an object match (or stop matching), act
//! writes S3 object tags, posts a signed webhook and produces an images.matched.v1
//! record, once per rule and object version.
//!
//! Layout:
//! - [`config`]: `[act]` and its rules, checked into [`Settings`];
//! - [`ledger`]: what was decided and done, so that a replay or a redelivery acts
//!   on nothing twice;
//! - [`tags`]: S3 object tags, beside the object's own;
//! - [`webhook`]: signed posts, retried within a budget;
//! - [`stage`]: the consumer loop;
//! - [`metrics`]: its counters.
//!
//! act reads the label log only. It never labels, never writes the index, and never
//! changes an object's bytes.

pub mod config;
pub mod ledger;
pub mod metrics;
pub mod stage;
pub mod tags;
pub mod webhook;

pub use config::{Config, Rule, RuleConfig, Settings};
pub use ledger::Ledger;
pub use metrics::Metrics;
pub use stage::{run, ActError, IsFolder, Stage};
pub use tags::Tagger;
