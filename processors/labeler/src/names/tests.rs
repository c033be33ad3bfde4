use super::*;

const LABELS: &[u8] = br#"{"classes": [
    {"wnid": "n1", "name": "Tabby", "ancestors": ["Cat", "Animal"]},
    {"wnid": "n2", "name": "Tiger Cat", "ancestors": ["Cat", "Animal"]},
    {"wnid": "n3", "name": "Beagle", "ancestors": ["Dog", "Animal"]},
    {"wnid": "n4", "name": "Seashore", "ancestors": ["Shore"]},
    {"wnid": "n5", "name": "Alp", "ancestors": ["Mountain"]}],
  "parents": {"Tabby": ["Cat"], "Tiger Cat": ["Cat"], "Cat": ["Animal"], "Beagle": ["Dog"], "Dog": ["Animal"],
              "Animal": [], "Seashore": ["Shore"], "Shore": [], "Alp": ["Mountain"], "Mountain": []}}"#;

fn confidences(labels: &[Label]) -> Vec<(String, i32)> {
    labels.iter().map(|l| (l.name.clone(), l.confidence.round() as i32)).collect()
}

fn label<'a>(labels: &'a [Label], name: &str) -> &'a Label {
    labels.iter().find(|l| l.name == name).unwrap_or_else(|| panic!("no {name} in {labels:?}"))
}

#[test]
fn hierarchy_sums_children_into_parents() {
    let h = Hierarchy::from_json(LABELS, 5).unwrap();
    let labels = h.labels(&[0.5, 0.4, 0.1, 0.0, 0.0], 20.0, 10);
    assert_eq!(
        confidences(&labels),
        [("Animal".into(), 100), ("Cat".into(), 90), ("Tabby".into(), 50), ("Tiger Cat".into(), 40)]
    );
    assert!(Hierarchy::from_json(LABELS, 4).is_err(), "class count must match the model");
}

#[test]
fn classes_under_one_percent_add_nothing_above_them() {
    let h = Hierarchy::from_json(LABELS, 5).unwrap();
    // 0.9% each: together 2.7% of "Animal", which the long tail of a real model makes 50%.
    let labels = h.labels(&[0.009, 0.009, 0.009, 0.973, 0.0], 0.0, 20);
    assert_eq!(confidences(&labels), [("Seashore".into(), 97), ("Shore".into(), 97)]);
}

const TABLE: &str = r#"
[rename]
"Seashore" = "Beach"
"Shore" = "Shoreline"

[[label]]
name = "Outdoors"
of = ["Landscape"]
aliases = ["Outside"]

[[label]]
name = "Landscape"
of = ["Beach", "Mountain"]
parents = ["Outdoors"]

[[label]]
name = "Beach"
parents = ["Shoreline", "Landscape"]
aliases = ["Coast"]

[[label]]
name = "Pet"
of = ["Cat", "Dog"]
parents = ["Animal"]

[category]
"Animal" = "Animals and Pets"
"Outdoors" = "Nature and Outdoors"
"Landscape" = "Nature and Outdoors"
"#;

#[test]
fn the_names_table_renames_combines_and_categorises() {
    let h = Hierarchy::build(LABELS, 5, TABLE.as_bytes(), Strictness::Strict).unwrap();
    let labels = h.labels(&[0.3, 0.0, 0.0, 0.5, 0.2], 1.0, 20);
    let beach = label(&labels, "Beach");
    assert_eq!(beach.confidence.round() as i32, 50);
    assert_eq!(beach.parents, ["Shoreline", "Landscape"], "the table's parents replace WordNet's");
    assert_eq!(beach.aliases, ["Seashore", "Coast"], "the WordNet name stays searchable");
    assert_eq!(beach.categories, ["Nature and Outdoors"], "from the nearest categorised label above");
    assert!(h.shaped("Seashore").is_none() && h.shaped("Shore").is_none(), "renamed, not duplicated");
    // Made of other labels, referring forwards: Outdoors ⊇ Landscape ⊇ Beach + Mountain.
    assert_eq!(label(&labels, "Landscape").confidence.round() as i32, 70);
    assert_eq!(label(&labels, "Outdoors").confidence.round() as i32, 70);
    assert_eq!(label(&labels, "Outdoors").aliases, ["Outside"]);
    let pet = label(&labels, "Pet");
    assert_eq!((pet.confidence.round() as i32, pet.categories.clone()), (30, vec!["Animals and Pets".to_string()]));
    // Parents are never less confident than their children.
    for l in &labels {
        for p in &l.parents {
            assert!(label(&labels, p).confidence >= l.confidence, "{} > its parent {p}", l.name);
        }
    }
    let tabby = label(&labels, "Tabby");
    assert_eq!(tabby.categories, ["Animals and Pets"]);
}

#[test]
fn a_name_the_model_lacks_is_an_error_for_the_builtin_table_and_skipped_for_a_custom_model() {
    let typo = format!("{TABLE}\n[[label]]\nname = \"Vehicle\"\nof = [\"Carr\"]\n");
    let err = Hierarchy::build(LABELS, 5, typo.as_bytes(), Strictness::Strict).unwrap_err();
    assert!(err.to_string().contains("\"Carr\""), "{err}");
    let h = Hierarchy::build(LABELS, 5, typo.as_bytes(), Strictness::Lenient).unwrap();
    let labels = h.labels(&[0.2, 0.2, 0.2, 0.2, 0.2], 0.0, 50);
    assert!(labels.iter().all(|l| l.name != "Vehicle"), "a label with no class is never named: {labels:?}");
    let bad = Hierarchy::build(LABELS, 5, b"[labels]\nname = 1\n", Strictness::Lenient).unwrap_err();
    assert!(bad.to_string().contains("names table"), "{bad}");
}

#[test]
fn the_builtin_table_names_only_labels_the_builtin_model_has() {
    let labels = include_bytes!("../../../../models/efficientnet-lite0/labels.json");
    let h = Hierarchy::build(labels, 1000, BUILTIN_NAMES, Strictness::Strict).unwrap();
    for name in ["Beach", "Mountain", "Lake", "Outdoors", "Nature", "Flower", "Plant", "Vehicle", "Car", "Landscape"] {
        assert!(h.shaped(name).is_some(), "{name}");
    }
}
