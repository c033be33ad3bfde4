//! Translates a search request into a tantivy query.
//!
//! A label term `cat` with min-confidence m matches the `label_conf` terms from
//! `cat\0{m}` to `cat\01000`. It is split into 5%-wide confidence bands, each
//! boosted by its band, so results come highest-confidence first.

use std::ops::Bound;

use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, Occur, Query, RangeQuery, RegexQuery, TermQuery,
};
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
            Bound::Excluded(fields.label_conf_term(label, high)),
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

/// A regex over 4-digit confidences (`0000`..`1000`) matching those at `tenths` or
/// above: zero-padded numbers of one width order as their digits do, so "at least
/// 0503" is a higher first digit, or `0` and a higher second, … or `0503` itself.
fn at_least(tenths: u32) -> String {
    let digits: Vec<u32> = format!("{:04}", tenths.min(1000)).chars().filter_map(|c| c.to_digit(10)).collect();
    let mut ways = Vec::new();
    for (i, digit) in digits.iter().enumerate() {
        if *digit < 9 {
            let head: String = digits[..i].iter().map(u32::to_string).collect();
            ways.push(format!("{head}[{}-9][0-9]{{{}}}", digit + 1, 3 - i));
        }
    }
    ways.push(digits.iter().map(u32::to_string).collect());
    format!("({})", ways.join("|"))
}

/// Documents with some label (by name or alias) at `min_tenths` or above.
fn any_label_query(fields: &Fields, min_tenths: u32) -> Box<dyn Query> {
    regex(&format!(r"[^\x00]*\x00{}", at_least(min_tenths)), fields.label_conf)
}

/// Documents whose file name, the key after its last `/`, holds `text` in any case.
fn name_query(fields: &Fields, text: &str) -> Box<dyn Query> {
    regex(&format!("(?i)(.*/)?[^/]*{}[^/]*", regex_syntax::escape(text)), fields.key)
}

fn regex(pattern: &str, field: tantivy::schema::Field) -> Box<dyn Query> {
    match RegexQuery::from_pattern(pattern, field) {
        Ok(query) => Box::new(ConstScoreQuery::new(Box::new(query), 0.0)),
        // Only a pattern too large for the automaton's limit (10 MB) fails: a file name
        // of thousands of characters matches no key.
        Err(_) => Box::new(EmptyQuery),
    }
}

fn expr_query(fields: &Fields, expr: &Expr, min_tenths: u32) -> Box<dyn Query> {
    match expr {
        Expr::All => Box::new(AllQuery),
        Expr::Label(name) => label_query(fields, name, min_tenths),
        Expr::AnyLabel => any_label_query(fields, min_tenths),
        Expr::Name(text) => name_query(fields, text),
        Expr::Meta(field, value) => {
            let field = fields.meta(*field);
            let (whole, words) = crate::photo::wanted(value);
            let all_words = BooleanQuery::new(words.iter().map(|w| (Occur::Must, term(field, w))).collect());
            let either =
                BooleanQuery::new(vec![(Occur::Should, term(field, &whole)), (Occur::Should, Box::new(all_words))]);
            Box::new(ConstScoreQuery::new(Box::new(either), 0.0))
        }
        Expr::Text(value) => {
            let wanted = crate::photo::text_wanted(value);
            let all = BooleanQuery::new(wanted.iter().map(|w| (Occur::Must, term(fields.text_terms, w))).collect());
            Box::new(ConstScoreQuery::new(Box::new(all), 0.0))
        }
        Expr::Taken(from, to) => {
            let range = RangeQuery::new(
                Bound::Included(Term::from_field_i64(fields.taken, *from)),
                Bound::Excluded(Term::from_field_i64(fields.taken, *to)),
            );
            Box::new(ConstScoreQuery::new(Box::new(range), 0.0))
        }
        Expr::And(items) => {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> =
                items.iter().map(|e| occur_for(fields, e, min_tenths, Occur::Must)).collect();
            // Only NOTs (`-dog -cat`): everything but those, as a lone NOT is.
            if clauses.iter().all(|(occur, _)| *occur == Occur::MustNot) {
                clauses.push((Occur::Must, Box::new(AllQuery)));
            }
            Box::new(BooleanQuery::new(clauses))
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
        (Occur::Must, expr_query(fields, &request.expression(), min_tenths)),
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

#[cfg(test)]
mod tests {
    use super::at_least;

    #[test]
    fn at_least_matches_exactly_the_confidences_at_or_above() {
        for floor in [0, 1, 9, 10, 99, 100, 499, 500, 503, 990, 999, 1000] {
            let pattern = regex::Regex::new(&format!("^{}$", at_least(floor))).unwrap();
            for tenths in 0..=1000u32 {
                assert_eq!(pattern.is_match(&format!("{tenths:04}")), tenths >= floor, "{tenths} at least {floor}");
            }
        }
    }
}
