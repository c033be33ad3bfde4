//! The label hierarchy of the local classifier: WordNet's names and ancestors from the
//! model's `labels.json`, then the names people search for from `models/names.toml`
//! (renames, scene and concept labels made of the model's classes, aliases and
//! Rekognition's categories).
//!
//! Every label's confidence is the summed probability of the classes under it, so a
//! cat split across "Tiger Cat" and "Tabby" is still ~94% "Cat", and "Outdoors" is
//! what the model gives every outdoor scene and structure it knows. Nothing is
//! invented: a label with no class under it at all cannot be named.

use std::collections::{BTreeSet, HashMap, VecDeque};

use bucketlens_schemas::Label;
use serde::Deserialize;

use crate::labeler::ModelError;

/// `models/names.toml`, compiled in with the built-in model.
pub static BUILTIN_NAMES: &[u8] = include_bytes!("../../../models/names.toml");

/// A class under this probability adds nothing to the labels above it: ImageNet has
/// 398 animal classes, and a photo of galaxies that gives each a fraction of a percent
/// would otherwise be "Animal 50%".
pub const CLASS_FLOOR: f32 = 0.01;

#[derive(Deserialize)]
struct LabelFile {
    classes: Vec<ClassEntry>,
    parents: HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct ClassEntry {
    name: String,
    ancestors: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NamesFile {
    #[serde(default)]
    rename: HashMap<String, String>,
    #[serde(default)]
    label: Vec<NamedLabel>,
    #[serde(default)]
    category: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedLabel {
    name: String,
    #[serde(default)]
    of: Vec<String>,
    parents: Option<Vec<String>>,
    #[serde(default)]
    aliases: Vec<String>,
}

/// How names that the model's labels lack are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// An error: the built-in model and its own table must agree.
    Strict,
    /// Skipped: a custom model's labels may use other names.
    Lenient,
}

/// The label hierarchy: which label nodes each class contributes its probability to.
#[derive(Debug)]
pub struct Hierarchy {
    names: Vec<String>,
    parents: Vec<Vec<String>>,
    aliases: Vec<Vec<String>>,
    categories: Vec<Vec<String>>,
    /// For each class, the nodes (itself and everything above it) it adds to.
    contributes_to: Vec<Vec<usize>>,
    /// For each node, how many classes add to it (ties are broken towards the more general).
    breadth: Vec<usize>,
}

/// Nodes by name, with the classes under each, while the hierarchy is built.
#[derive(Default)]
struct Builder {
    index: HashMap<String, usize>,
    names: Vec<String>,
    members: Vec<BTreeSet<usize>>,
    parents: Vec<Vec<String>>,
    aliases: Vec<Vec<String>>,
}

impl Builder {
    fn node(&mut self, name: &str) -> usize {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        let id = self.names.len();
        self.index.insert(name.to_string(), id);
        self.names.push(name.to_string());
        self.members.push(BTreeSet::new());
        self.parents.push(Vec::new());
        self.aliases.push(Vec::new());
        id
    }
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

impl Hierarchy {
    /// The hierarchy of a model with `classes` outputs, from its `labels.json` alone.
    pub fn from_json(bytes: &[u8], classes: usize) -> Result<Self, ModelError> {
        Self::build(bytes, classes, b"", Strictness::Strict)
    }

    /// The hierarchy from `labels.json` and a names table (`models/names.toml`).
    pub fn build(labels: &[u8], classes: usize, names: &[u8], strictness: Strictness) -> Result<Self, ModelError> {
        let file: LabelFile = serde_json::from_slice(labels).map_err(|e| ModelError::Labels(e.to_string()))?;
        if file.classes.len() != classes {
            return Err(ModelError::Labels(format!("{} classes, the model has {classes}", file.classes.len())));
        }
        let table: NamesFile = match std::str::from_utf8(names) {
            Ok(text) => toml::from_str(text).map_err(|e| ModelError::Labels(format!("the names table: {e}")))?,
            Err(e) => return Err(ModelError::Labels(format!("the names table: {e}"))),
        };
        let rename = |name: &str| table.rename.get(name).cloned().unwrap_or_else(|| name.to_string());
        let mut b = Builder::default();
        for (class, entry) in file.classes.iter().enumerate() {
            for name in std::iter::once(&entry.name).chain(&entry.ancestors) {
                let id = b.node(&rename(name));
                b.members[id].insert(class);
            }
        }
        for (name, parents) in &file.parents {
            let id = b.node(&rename(name));
            for parent in parents {
                push_unique(&mut b.parents[id], &rename(parent));
            }
        }
        // A renamed WordNet name stays searchable, unless it is only a qualified form.
        for (from, to) in &table.rename {
            if let (Some(&id), false) = (b.index.get(to), from.contains('(')) {
                push_unique(&mut b.aliases[id], from);
            }
        }
        let missing = |what: &str, name: &str| {
            ModelError::Labels(format!("the names table: {what} {name:?} is no label of the model"))
        };
        // Table labels exist before any refers to another.
        let known: BTreeSet<&str> = table.label.iter().map(|l| l.name.as_str()).collect();
        let mut contains: Vec<(usize, usize)> = Vec::new(); // (superset, subset)
        for entry in &table.label {
            let id = b.node(&entry.name);
            for of in &entry.of {
                match b.index.get(of) {
                    Some(&sub) => contains.push((id, sub)),
                    None if known.contains(of.as_str()) => contains.push((id, b.node(of))),
                    None if strictness == Strictness::Strict => return Err(missing("label", of)),
                    None => {}
                }
            }
            if let Some(parents) = &entry.parents {
                let mut kept = Vec::new();
                for parent in parents {
                    if b.index.contains_key(parent) || known.contains(parent.as_str()) {
                        b.node(parent);
                        kept.push(parent.clone());
                    } else if strictness == Strictness::Strict {
                        return Err(missing("parent", parent));
                    }
                }
                b.parents[id] = kept;
            }
            for alias in &entry.aliases {
                push_unique(&mut b.aliases[id], alias);
            }
        }
        if strictness == Strictness::Strict {
            if let Some(name) = table.category.keys().find(|n| !b.index.contains_key(n.as_str())) {
                return Err(missing("category label", name));
            }
        }
        // Every parent holds every class of its children; every label the classes of
        // what it is made of. Repeated until nothing changes (the table may refer forwards).
        for (id, parents) in b.parents.iter().enumerate() {
            for parent in parents {
                if let Some(&p) = b.index.get(parent) {
                    contains.push((p, id));
                }
            }
        }
        loop {
            let mut changed = false;
            for &(sup, sub) in &contains {
                if sup != sub && !b.members[sub].is_subset(&b.members[sup]) {
                    let add: Vec<usize> = b.members[sub].iter().copied().collect();
                    b.members[sup].extend(add);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // A label with no class under it cannot be named (a table entry whose every
        // source was skipped): drop it from the parents it would have been shown with.
        let empty: BTreeSet<&str> =
            b.names.iter().zip(&b.members).filter(|(_, m)| m.is_empty()).map(|(n, _)| n.as_str()).collect();
        let parents: Vec<Vec<String>> =
            b.parents.iter().map(|ps| ps.iter().filter(|p| !empty.contains(p.as_str())).cloned().collect()).collect();
        let categories = (0..b.names.len()).map(|id| category(&b, &parents, &table.category, id)).collect();
        let mut contributes_to = vec![Vec::new(); classes];
        for (node, members) in b.members.iter().enumerate() {
            for &class in members {
                contributes_to[class].push(node);
            }
        }
        let breadth = b.members.iter().map(BTreeSet::len).collect();
        Ok(Self { names: b.names, parents, aliases: b.aliases, categories, contributes_to, breadth })
    }

    /// Labels from class probabilities: summed up the tree, filtered, highest first.
    pub fn labels(&self, probabilities: &[f32], min_confidence: f32, max_labels: usize) -> Vec<Label> {
        let mut confidence = vec![0f32; self.names.len()];
        for (class, &p) in probabilities.iter().enumerate() {
            if p < CLASS_FLOOR {
                continue;
            }
            for &node in &self.contributes_to[class] {
                confidence[node] += p;
            }
        }
        let mut kept: Vec<usize> =
            (0..self.names.len()).filter(|&n| confidence[n] > 0.0 && confidence[n] * 100.0 >= min_confidence).collect();
        kept.sort_by(|&a, &b| {
            confidence[b]
                .total_cmp(&confidence[a])
                .then(self.breadth[b].cmp(&self.breadth[a]))
                .then(self.names[a].cmp(&self.names[b]))
        });
        kept.truncate(max_labels);
        kept.into_iter()
            .map(|n| Label {
                name: self.names[n].clone(),
                confidence: (confidence[n] * 100.0).min(100.0),
                parents: self.parents[n].clone(),
                categories: self.categories[n].clone(),
                aliases: self.aliases[n].clone(),
                instances: Vec::new(),
            })
            .collect()
    }

    /// The label `name` as this hierarchy shapes it (parents, aliases, category), at
    /// confidence 0: for another model's findings of the same thing.
    pub fn shaped(&self, name: &str) -> Option<Label> {
        let n = self.names.iter().position(|x| x == name)?;
        Some(Label {
            name: self.names[n].clone(),
            confidence: 0.0,
            parents: self.parents[n].clone(),
            categories: self.categories[n].clone(),
            aliases: self.aliases[n].clone(),
            instances: Vec::new(),
        })
    }
}

/// The category of the nearest label at or above `id` that has one.
fn category(b: &Builder, parents: &[Vec<String>], categories: &HashMap<String, String>, id: usize) -> Vec<String> {
    let mut queue = VecDeque::from([id]);
    let mut seen = BTreeSet::from([id]);
    while let Some(node) = queue.pop_front() {
        if let Some(category) = categories.get(&b.names[node]) {
            return vec![category.clone()];
        }
        for parent in &parents[node] {
            if let Some(&p) = b.index.get(parent) {
                if seen.insert(p) {
                    queue.push_back(p);
                }
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests;
