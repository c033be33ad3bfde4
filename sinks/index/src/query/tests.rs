use super::*;

fn l(s: &str) -> Expr {
    Expr::Label(s.into())
}

fn or(items: &[Expr]) -> Expr {
    Expr::Or(items.to_vec())
}

#[test]
fn parses_the_documented_forms() {
    assert_eq!(Expr::parse("Cat").unwrap(), l("cat"));
    assert_eq!(Expr::parse("dog AND grass").unwrap(), Expr::And(vec![l("dog"), l("grass")]));
    assert_eq!(Expr::parse("\"dog\" \"grass\"").unwrap(), Expr::And(vec![l("dog"), l("grass")]));
    assert_eq!(Expr::parse("cat OR dog").unwrap(), Expr::Or(vec![l("cat"), l("dog")]));
    assert_eq!(Expr::parse("cat -dog").unwrap(), Expr::And(vec![l("cat"), Expr::Not(Box::new(l("dog")))]));
    assert_eq!(Expr::parse("\"Golden  Retriever\"").unwrap(), l("golden retriever"));
    assert_eq!(
        Expr::parse("(cat OR dog) AND NOT sofa").unwrap(),
        Expr::And(vec![Expr::Or(vec![l("cat"), l("dog")]), Expr::Not(Box::new(l("sofa")))])
    );
    assert_eq!(
        Expr::parse("a OR b AND c").unwrap(),
        Expr::Or(vec![l("a"), Expr::And(vec![l("b"), l("c")])]),
        "AND binds tighter"
    );
    assert_eq!(Expr::parse("").unwrap(), Expr::All);
    assert_eq!(Expr::parse("*").unwrap(), Expr::All);
}

#[test]
fn forgives_case_plurals_synonyms_and_unquoted_names() {
    assert_eq!(Expr::parse("cat or dog").unwrap(), Expr::parse("cat OR dog").unwrap());
    assert_eq!(Expr::parse("cat and not dog").unwrap(), Expr::parse("cat AND NOT dog").unwrap());
    assert_eq!(Expr::parse("\"or\"").unwrap(), l("or"), "a quoted operator is a label");
    assert_eq!(Expr::parse("cats").unwrap(), or(&[l("cats"), l("cat")]));
    assert_eq!(Expr::parse("puppies").unwrap(), or(&[l("puppies"), l("puppy"), l("dog")]));
    assert_eq!(Expr::parse("boxes").unwrap(), or(&[l("boxes"), l("box")]));
    assert_eq!(Expr::parse("churches").unwrap(), or(&[l("churches"), l("church")]));
    assert_eq!(Expr::parse("\"golden retrievers\"").unwrap(), or(&[l("golden retrievers"), l("golden retriever")]));
    for not_plural in ["grass", "glass", "cactus", "bus"] {
        assert_eq!(Expr::parse(not_plural).unwrap(), l(not_plural));
    }
    assert_eq!(Expr::parse("kitten").unwrap(), or(&[l("kitten"), l("cat")]));
    assert_eq!(
        Expr::parse("domestic cat").unwrap(),
        or(&[Expr::And(vec![l("domestic"), l("cat")]), l("domestic cat")]),
        "both words, or the label of two words"
    );
    assert_eq!(
        Expr::parse("dog golden retriever").unwrap(),
        or(&[
            Expr::And(vec![l("dog"), l("golden"), l("retriever")]),
            Expr::And(vec![l("dog golden"), l("retriever")]),
            Expr::And(vec![l("dog"), l("golden retriever")]),
        ])
    );
}

#[test]
fn file_names_and_having_labels() {
    assert_eq!(Expr::parse("name:IMG_2019").unwrap(), Expr::Name("img_2019".into()));
    assert_eq!(Expr::parse("NAME:\"Summer 2019\"").unwrap(), Expr::Name("summer 2019".into()));
    assert_eq!(
        Expr::parse("cat name:beach").unwrap(),
        Expr::And(vec![l("cat"), Expr::Name("beach".into())]),
        "a file name is AND-ed like a label"
    );
    assert_eq!(Expr::parse("has:labels").unwrap(), Expr::AnyLabel);
    assert_eq!(Expr::parse("-has:label").unwrap(), Expr::Not(Box::new(Expr::AnyLabel)));
    assert_eq!(Expr::parse("\"name:x\"").unwrap(), l("name:x"), "quoted, it is a label");
    assert_eq!(Expr::parse("ratio:16").unwrap(), l("ratio:16"), "an unknown field is a label's word");
    for (bad, said) in [
        ("name:", "name: at character 1 needs some text of a file name, such as name:IMG_2019"),
        ("cat has:cats", "has: at character 5 takes labels (has:labels), not \"cats\""),
        ("name:\"open", "the quote after name: at character 1 is not closed"),
    ] {
        let err = Expr::parse(bad).unwrap_err();
        assert!(err.ends_with(said), "{bad}: {err}");
    }
}

#[test]
fn a_minimum_confidence_without_a_label_means_some_label_at_it() {
    let all = Expr::parse("*").unwrap();
    assert_eq!(all.at_confidence(0.0), Expr::All, "at 0 every photo, labeled or not");
    assert_eq!(all.at_confidence(50.0), Expr::AnyLabel);
    let name = Expr::parse("name:beach").unwrap();
    assert_eq!(name.at_confidence(50.0), Expr::And(vec![Expr::Name("beach".into()), Expr::AnyLabel]));
    for asks in ["cat", "-cat", "-has:labels", "has:labels name:x"] {
        let expr = Expr::parse(asks).unwrap();
        assert_eq!(expr.at_confidence(50.0), expr, "{asks}: the minimum applies to the labels named");
    }
}

#[test]
fn nesting_is_bounded_so_a_hostile_query_cannot_overflow_the_stack() {
    let nested = |n: usize| format!("{}cat{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(Expr::parse(&nested(MAX_DEPTH)).unwrap(), l("cat"));
    assert_eq!(
        Expr::parse(&format!("{}cat", "-".repeat(MAX_DEPTH - 1))).unwrap().positive_labels(),
        Vec::<String>::new()
    );
    // Found by the fuzzer (fuzz/, target `query`): these overflowed the stack.
    for hostile in
        [nested(MAX_DEPTH + 1), "(".repeat(200_000), "-".repeat(200_000) + "cat", "NOT ".repeat(50_000) + "cat"]
    {
        let err = Expr::parse(&hostile).unwrap_err();
        assert!(err.contains("nest deeper than 64 levels"), "{}", &err[err.len().saturating_sub(80)..]);
    }
    // Depth is nesting, not count: many groups side by side are fine.
    assert!(Expr::parse(&"(cat) ".repeat(1000)).is_ok());
}

#[test]
fn rejects_malformed_queries_in_plain_words_with_the_position() {
    for (bad, said) in [
        ("(cat", "the parenthesis at character 1 is not closed"),
        ("cat \"dog", "the quote at character 5 is not closed"),
        ("cat AND", "the query ends after AND: a label should follow"),
        ("cat)", "the “)” at character 4 closes no parenthesis"),
        ("OR", "the query cannot start with OR: a label should come first"),
        ("cat AND OR dog", "OR at character 9 cannot follow AND: a label should be there"),
        ("cat \"\"", "the quotes at character 5 hold no label"),
    ] {
        let err = Expr::parse(bad).unwrap_err();
        assert!(err.starts_with("invalid query") && err.ends_with(said), "{bad}: {err}");
    }
}

#[test]
fn photo_qualifiers_parse_to_their_fields_and_ranges_and_bad_ones_say_what_fits() {
    use crate::photo::Field;
    use bucketlens_schemas::taken::days_from_civil;
    let day = 86_400_000;
    assert_eq!(
        Expr::parse("year:2019").unwrap(),
        Expr::Taken(days_from_civil(2019, 1, 1) * day, days_from_civil(2020, 1, 1) * day)
    );
    assert_eq!(
        Expr::parse("taken:2019-12").unwrap(),
        Expr::Taken(days_from_civil(2019, 12, 1) * day, days_from_civil(2020, 1, 1) * day)
    );
    assert_eq!(
        Expr::parse("taken:2020-02-29").unwrap(),
        Expr::Taken(days_from_civil(2020, 2, 29) * day, days_from_civil(2020, 3, 1) * day)
    );
    assert_eq!(Expr::parse("CAMERA:\"Fujifilm  X-T30\"").unwrap(), Expr::Meta(Field::Camera, "fujifilm x-t30".into()));
    assert_eq!(
        Expr::parse("keyword:invoice cat").unwrap(),
        Expr::And(vec![Expr::Meta(Field::Keyword, "invoice".into()), Expr::Label("cat".into())])
    );
    assert_eq!(Expr::parse("-lens:50mm").unwrap(), Expr::Not(Box::new(Expr::Meta(Field::Lens, "50mm".into()))));
    for (bad, said) in [
        ("year:19", "year:19 at character 1 needs a year, such as year:2019"),
        ("year:2019-07", "needs a year, such as year:2019"),
        ("taken:2019-13", "taken:2019-13 at character 1 is no date"),
        ("taken:yesterday", "needs a date, such as taken:2019, taken:2019-07 or taken:2019-07-14"),
        ("cat camera:", "camera: at character 5 needs some text"),
    ] {
        let err = Expr::parse(bad).unwrap_err();
        assert!(err.starts_with("invalid query") && err.contains(said), "{bad}: {err}");
    }
}
