//! Translates a search request into a tantivy query.
//!
//! A label term `cat` with min-confidence m matches the `label_conf` terms from
//! `cat\0{m}` to `cat\01000`. It is split into 5%-wide confidence bands, each
//! boosted by its band, so results come highest-confidence first.

use std::ops::Bound;

use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::Term;

use super::fields::{Fields, CONFIDENCE_SCALE};
use crate::index::SearchRequest;
use crate::query::Expr;

const BAND: u32 = 50; // tenths of a percent

fn label_query(fields: &Fields, label: &str, min_tenths: u32) -> Box<dyn Query> {
    let mut bands: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let mut low = min_tenths;
    while low <= 1000 {
        let high = ((low / BAND) + 1) * BAND; // exclusive
        let range = RangeQuery::new(
            Bound::Included(fields.label_conf_term(label, low)),
            Bound::Excluded(fields.label_conf_term(label, high.min(1001))),
        );
        let weight = 1.0 + (low / BAND) as f32;
        bands.push((
            Occur::Should,
            Box::new(BoostQuery::new(Box::new(ConstScoreQuery::new(Box::new(range), 1.0)), weight)),
        ));
        low = high;
    }
    Box::new(BooleanQuery::new(bands))
}

fn expr_query(fields: &Fields, expr: &Expr, min_tenths: u32) -> Box<dyn Query> {
    match expr {
        Expr::All => Box::new(AllQuery),
        Expr::Label(name) => label_query(fields, name, min_tenths),
        Expr::And(items) => {
            Box::new(BooleanQuery::new(items.iter().map(|e| occur_for(fields, e, min_tenths, Occur::Must)).collect()))
        }
        Expr::Or(items) => Box::new(BooleanQuery::new(
            items.iter().map(|e| (Occur::Should, expr_query(fields, e, min_tenths))).collect(),
        )),
        Expr::Not(inner) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
            (Occur::MustNot, expr_query(fields, inner, min_tenths)),
        ])),
    }
}

/// `NOT x` inside an AND is a MustNot clause of that AND, not a nested query.
fn occur_for(fields: &Fields, expr: &Expr, min_tenths: u32, occur: Occur) -> (Occur, Box<dyn Query>) {
    match expr {
        Expr::Not(inner) => (Occur::MustNot, expr_query(fields, inner, min_tenths)),
        other => (occur, expr_query(fields, other, min_tenths)),
    }
}

fn term(field: tantivy::schema::Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic))
}

/// The whole query: state, bucket and prefix filters around the label expression.
pub fn build(fields: &Fields, request: &SearchRequest) -> Box<dyn Query> {
    let min_tenths = (request.min_confidence * CONFIDENCE_SCALE).round().clamp(0.0, 1000.0) as u32;
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
        (Occur::Must, expr_query(fields, &request.query, min_tenths)),
        (Occur::Must, Box::new(ConstScoreQuery::new(term(fields.state, request.state.as_str()), 0.0))),
    ];
    if let Some(bucket) = &request.bucket {
        clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(term(fields.bucket, bucket), 0.0))));
    }
    if let Some(prefix) = request.prefix.as_deref().filter(|p| !p.is_empty()) {
        let upper = format!("{prefix}\u{10FFFF}");
        let range = RangeQuery::new(
            Bound::Included(Term::from_field_text(fields.key, prefix)),
            Bound::Excluded(Term::from_field_text(fields.key, &upper)),
        );
        clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(Box::new(range), 0.0))));
    }
    if let Some(version) = &request.model_version {
        clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(term(fields.model_version, version), 0.0))));
    }
    for (field, (low, high)) in [(fields.last_modified, request.modified), (fields.size, request.size)] {
        if low.is_none() && high.is_none() {
            continue;
        }
        let bound = |v: Option<i64>| v.map_or(Bound::Unbounded, |v| Bound::Included(Term::from_field_i64(field, v)));
        let range = RangeQuery::new(bound(low), bound(high));
        clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(Box::new(range), 0.0))));
    }
    Box::new(BooleanQuery::new(clauses))
}
