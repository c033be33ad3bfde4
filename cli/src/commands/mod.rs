//! One module per subcommand: parse its arguments, wire the parts, print the result.

pub mod config;
pub mod docs;
pub mod duplicates;
pub mod label;
pub mod labels;
pub mod models;
pub mod reindex;
pub mod search;
pub mod serve;
pub mod sink;

/// Percent with one decimal.
pub fn pct(confidence: f32) -> String {
    format!("{confidence:.1}")
}
