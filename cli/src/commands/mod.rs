//! One module per subcommand: parse its arguments, wire the parts, print the result.

pub mod config;
pub mod index;
pub mod label;
pub mod labels;
pub mod produce;
pub mod reindex;
pub mod relabel;
pub mod replay;
pub mod search;
pub mod serve;
pub mod sink;
pub mod status;

/// Percent with one decimal.
pub fn pct(confidence: f32) -> String {
    format!("{confidence:.1}")
}
