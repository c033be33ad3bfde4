//! The label query language, parsed into a backend-neutral expression.
//!
//! ```text
//! cat                      documents labeled Cat
//! dog AND grass            both labels (AND is also implied: `dog grass`)
//! cat OR dog               either
//! cat AND NOT dog          `-dog` works too
//! "golden retriever"       a multi-word label
//! (cat OR dog) AND sofa    grouping
//! *                        everything
//! name:IMG_20              a file name (the key's last part) holding this text
//! has:labels               photos with some label (`-has:labels`: with none)
//! year:2019                taken in 2019 (by the camera's clock: EXIF, XMP)
//! taken:2019-07            taken in July 2019 (a year, a month or a day)
//! camera:"x-t30"           the camera's make or model (its words, any case)
//! lens:35mm                the lens
//! keyword:invoice          a keyword a person gave it (IPTC, XMP, Lightroom)
//! text:exit                a word in the photo (`labeler.text`), any case, accent or width
//! text:"gare du nord"      a phrase in the photo, in this order, within one line
//! ```
//! Labels match case-insensitively and whole (`cat` does not match `Tiger Cat`;
//! Tiger Cat's parent Cat does, with its summed confidence). The language forgives:
//! operators in any case (`cat or dog`), a plural finds its singular (`cats`), a few
//! true synonyms find their label (`kitten` finds Cat), and bare words side by side
//! also match as one label (`domestic cat` finds Domestic Cat). Errors say where.

// A label name as the index keeps it: lowercase, single spaces (as metadata terms).
use crate::photo::normalized;

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    All,
    /// A label name, lowercased.
    Label(String),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// Documents with some label at the minimum confidence or above.
    AnyLabel,
    /// Documents whose file name (the key after its last `/`) holds this text,
    /// lowercased; matched without regard to case.
    Name(String),
    /// Photos whose metadata field holds this text (lowercased, single spaces):
    /// as a whole term, or all of its words.
    Meta(crate::photo::Field, String),
    /// Photos taken within `[from, to)`, wall-clock ms (see [`crate::photo::taken_ms`]).
    Taken(i64, i64),
    /// Photos whose text holds this word or phrase ([`crate::photo::text_wanted`]).
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Name(String),
    HasLabels,
    Meta(crate::photo::Field, String),
    Taken(String, i64, i64),
    Text(String),
    And,
    Or,
    Not,
    Open,
    Close,
}

impl Token {
    /// The token as a person typed it, for error messages.
    fn shown(&self) -> String {
        match self {
            Self::Word(w) => format!("“{w}”"),
            Self::Quoted(w) => format!("“\"{w}\"”"),
            Self::Name(w) => format!("“name:{w}”"),
            Self::HasLabels => "“has:labels”".into(),
            Self::Meta(field, w) => format!("“{}:{w}”", field.name()),
            Self::Taken(shown, _, _) => format!("“{shown}”"),
            Self::Text(w) => format!("“text:{w}”"),
            Self::And => "AND".into(),
            Self::Or => "OR".into(),
            Self::Not => "NOT".into(),
            Self::Open => "“(”".into(),
            Self::Close => "“)”".into(),
        }
    }
}

/// Tokens with the character (1-based) each starts at.
fn tokenize(input: &str) -> Result<Vec<(Token, usize)>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().enumerate().peekable();
    while let Some(&(at, c)) = chars.peek() {
        let at = at + 1;
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '(' || c == ')' {
            chars.next();
            tokens.push((if c == '(' { Token::Open } else { Token::Close }, at));
            continue;
        }
        if c == '"' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some((_, '"')) => break,
                    Some((_, ch)) => text.push(ch),
                    None => return Err(format!("the quote at character {at} is not closed")),
                }
            }
            tokens.push((Token::Quoted(text), at));
            continue;
        }
        if c == '-' {
            chars.next();
            tokens.push((Token::Not, at));
            continue;
        }
        let mut word = String::new();
        while let Some(&(_, ch)) = chars.peek() {
            if ch.is_whitespace() || ch == '(' || ch == ')' || ch == '"' {
                break;
            }
            word.push(ch);
            chars.next();
        }
        if let Some(field) = field_of(&word) {
            let mut value = word[field.len() + 1..].to_string();
            // `name:"summer 2019"`: the value is the quoted text.
            if value.is_empty() && chars.peek().is_some_and(|&(_, ch)| ch == '"') {
                chars.next();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, ch)) => value.push(ch),
                        None => return Err(format!("the quote after {field}: at character {at} is not closed")),
                    }
                }
            }
            tokens.push((field_token(&field, &value, at)?, at));
            continue;
        }
        // Operators in any case: `cat or dog` is `cat OR dog`. A label named like
        // one is quoted: `"not"`.
        let token = match word.to_uppercase().as_str() {
            "AND" | "&&" => Token::And,
            "OR" | "||" => Token::Or,
            "NOT" | "!" => Token::Not,
            _ => Token::Word(word),
        };
        tokens.push((token, at));
    }
    Ok(tokens)
}

/// The field a word names (`name:…`, `has:…`), lowercased, if it starts with one.
fn field_of(word: &str) -> Option<String> {
    let (field, _) = word.split_once(':')?;
    let field = field.to_ascii_lowercase();
    (["name", "has", "year", "taken", "text"].contains(&field.as_str()) || crate::photo::Field::named(&field).is_some())
        .then_some(field)
}

fn field_token(field: &str, value: &str, at: usize) -> Result<Token, String> {
    match field {
        "name" if value.trim().is_empty() => {
            Err(format!("name: at character {at} needs some text of a file name, such as name:IMG_2019"))
        }
        "name" => Ok(Token::Name(value.trim().to_lowercase())),
        "text" if crate::photo::text_wanted(value).is_empty() => {
            Err(format!("text: at character {at} needs a word or a phrase, such as text:exit or text:\"gare du nord\""))
        }
        "text" => Ok(Token::Text(normalized(value))),
        _ if crate::photo::Field::named(field).is_some() => {
            let meta = crate::photo::Field::named(field).expect("checked");
            let value = normalized(value);
            if value.is_empty() {
                return Err(format!("{field}: at character {at} needs some text, such as {field}:\"x-t30\""));
            }
            Ok(Token::Meta(meta, value))
        }
        "year" | "taken" => {
            let (from, to) =
                taken_range(field, value.trim()).map_err(|why| format!("{field}:{value} at character {at} {why}"))?;
            Ok(Token::Taken(format!("{field}:{value}"), from, to))
        }
        _ if ["label", "labels"].contains(&value.to_ascii_lowercase().as_str()) => Ok(Token::HasLabels),
        _ => Err(format!("has: at character {at} takes labels (has:labels), not {value:?}")),
    }
}

/// The wall-clock instants a `year:` or `taken:` value spans: `[from, to)`.
fn taken_range(field: &str, value: &str) -> Result<(i64, i64), String> {
    use bucketlens_schemas::taken::{days_from_civil, Taken};
    let shape = if field == "year" {
        "a year, such as year:2019"
    } else {
        "a date, such as taken:2019, taken:2019-07 or taken:2019-07-14"
    };
    let fits = match field {
        "year" => value.len() == 4,
        _ => [4, 7, 10].contains(&value.len()),
    };
    let at = Taken::parse_iso(value).ok().filter(|_| fits).ok_or_else(|| format!("needs {shape}"))?;
    let at = at.check(9999).map_err(|why| format!("is no date: {why}"))?;
    let day = 86_400_000;
    let start = days_from_civil(at.year, at.month, at.day) * day;
    let end = match value.len() {
        4 => days_from_civil(at.year + 1, 1, 1) * day,
        7 if at.month == 12 => days_from_civil(at.year + 1, 1, 1) * day,
        7 => days_from_civil(at.year, at.month + 1, 1) * day,
        _ => start + day,
    };
    Ok((start, end))
}

/// How deep parentheses and NOTs may nest: the parser, the backends' translations
/// and dropping an expression all recurse once a level.
pub const MAX_DEPTH: usize = 64;

/// Words whose meaning a label of the built-in models names under another word, where
/// that is true of every photo the word fits: a kitten is a cat. A search for the
/// word also finds the label.
const SYNONYMS: &[(&str, &str)] = &[
    ("kitten", "cat"),
    ("kitty", "cat"),
    ("puppy", "dog"),
    ("pup", "dog"),
    ("people", "person"),
    ("human", "person"),
    ("man", "person"),
    ("woman", "person"),
    ("child", "person"),
    ("kid", "person"),
    ("automobile", "car"),
    ("bike", "bicycle"),
    ("motorbike", "motorcycle"),
    ("plane", "airplane"),
    ("aeroplane", "airplane"),
    ("cellphone", "mobile phone"),
    ("smartphone", "mobile phone"),
];

/// The singular an English plural most likely has (`cats` → `cat`, `puppies` →
/// `puppy`, `boxes` → `box`), if the word looks plural.
fn singular(word: &str) -> Option<String> {
    let last = word.rsplit(' ').next().unwrap_or(word);
    let head = &word[..word.len() - last.len()];
    let one = if let Some(stem) = last.strip_suffix("ies").filter(|s| s.len() > 1) {
        format!("{stem}y")
    } else if let Some(stem) = ["ches", "shes", "sses", "xes", "zes"].iter().find_map(|e| last.strip_suffix(e)) {
        format!("{stem}{}", &last[stem.len()..last.len() - 2])
    } else if last.ends_with('s') && !last.ends_with("ss") && !last.ends_with("us") && last.len() > 3 {
        last[..last.len() - 1].to_string()
    } else if last == "people" {
        "person".to_string()
    } else {
        return None;
    };
    Some(format!("{head}{one}"))
}

/// A label as typed, and the names it also means: its singular, and a synonym's label.
fn label(name: String) -> Expr {
    let mut names = vec![name];
    if let Some(one) = singular(&names[0]) {
        names.push(one);
    }
    for known in names.clone() {
        for (_, synonym) in SYNONYMS.iter().filter(|(word, _)| *word == known) {
            names.push((*synonym).to_string());
        }
    }
    let mut unique: Vec<String> = Vec::new();
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    if unique.len() == 1 {
        return Expr::Label(unique.remove(0));
    }
    Expr::Or(unique.into_iter().map(Expr::Label).collect())
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    depth: usize,
    /// The query's length in characters, for "ends too early".
    end: usize,
}

/// Bare words side by side (`domestic cat`) are both labels, or one label of two words.
const MAX_RUN: usize = 6;

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        token
    }

    /// Where the token just taken starts.
    fn at(&self) -> usize {
        self.tokens.get(self.pos.saturating_sub(1)).map_or(self.end, |(_, at)| *at)
    }

    // or := and ("OR" and)*
    fn or(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.next();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::Or(items) })
    }

    // and := unary (("AND")? unary)*
    fn and(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.unary()?];
        loop {
            match self.peek() {
                Some(Token::And) => {
                    self.next();
                    items.push(self.unary()?);
                }
                Some(Token::Word(w)) if self.bare(w) => items.push(self.run()?),
                Some(
                    Token::Word(_)
                    | Token::Quoted(_)
                    | Token::Name(_)
                    | Token::HasLabels
                    | Token::Meta(..)
                    | Token::Taken(..)
                    | Token::Text(..)
                    | Token::Not
                    | Token::Open,
                ) => items.push(self.unary()?),
                _ => break,
            }
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::And(items) })
    }

    fn bare(&self, word: &str) -> bool {
        word != "*"
    }

    /// Bare words side by side: all of them as labels, or two neighbours as one label
    /// of two words (`domestic cat` finds Domestic Cat, and photos with both).
    fn run(&mut self) -> Result<Expr, String> {
        let mut words = Vec::new();
        while let Some(Token::Word(w)) = self.peek() {
            if !self.bare(w) || words.len() == MAX_RUN {
                break;
            }
            words.push(normalized(w));
            self.next();
        }
        if words.len() == 1 {
            return Ok(label(words.remove(0)));
        }
        let mut ways = vec![Expr::And(words.iter().cloned().map(label).collect())];
        for i in 0..words.len() - 1 {
            let mut merged: Vec<Expr> = words[..i].iter().cloned().map(label).collect();
            merged.push(label(format!("{} {}", words[i], words[i + 1])));
            merged.extend(words[i + 2..].iter().cloned().map(label));
            ways.push(if merged.len() == 1 { merged.remove(0) } else { Expr::And(merged) });
        }
        Ok(Expr::Or(ways))
    }

    fn unary(&mut self) -> Result<Expr, String> {
        let nests = matches!(self.peek(), Some(Token::Not | Token::Open));
        if nests {
            if self.depth == MAX_DEPTH {
                return Err(format!("parentheses and NOTs nest deeper than {MAX_DEPTH} levels"));
            }
            self.depth += 1;
        }
        let expr = self.unary_at_depth();
        if nests {
            self.depth -= 1;
        }
        expr
    }

    fn unary_at_depth(&mut self) -> Result<Expr, String> {
        if matches!(self.peek(), Some(Token::Word(w)) if self.bare(w)) {
            return self.run();
        }
        let before = self.pos.checked_sub(1).and_then(|p| self.tokens.get(p)).map(|(t, _)| t.shown());
        match self.next() {
            Some(Token::Not) => Ok(Expr::Not(Box::new(self.unary()?))),
            Some(Token::Open) => {
                let open = self.at();
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err(format!("the parenthesis at character {open} is not closed")),
                }
            }
            Some(Token::Word(w)) if w == "*" => Ok(Expr::All),
            Some(Token::Name(text)) => Ok(Expr::Name(text)),
            Some(Token::HasLabels) => Ok(Expr::AnyLabel),
            Some(Token::Meta(field, value)) => Ok(Expr::Meta(field, value)),
            Some(Token::Taken(_, from, to)) => Ok(Expr::Taken(from, to)),
            Some(Token::Text(value)) => Ok(Expr::Text(value)),
            Some(Token::Word(w) | Token::Quoted(w)) => {
                let name = normalized(&w);
                if name.is_empty() {
                    return Err(format!("the quotes at character {} hold no label", self.at()));
                }
                Ok(label(name))
            }
            Some(t) => Err(match before {
                Some(before) => {
                    format!("{} at character {} cannot follow {before}: a label should be there", t.shown(), self.at())
                }
                None => format!("the query cannot start with {}: a label should come first", t.shown()),
            }),
            None => Err(match before {
                Some(before) => format!("the query ends after {before}: a label should follow"),
                None => "the query is empty".into(),
            }),
        }
    }
}

impl Expr {
    /// Parses a query; an empty query matches everything. Errors say where, in words.
    pub fn parse(input: &str) -> Result<Self, String> {
        let tokens = tokenize(input).map_err(|e| format!("invalid query {input:?}: {e}"))?;
        if tokens.is_empty() {
            return Ok(Self::All);
        }
        let end = input.chars().count();
        let mut parser = Parser { tokens, pos: 0, depth: 0, end };
        let expr = parser.or().map_err(|e| format!("invalid query {input:?}: {e}"))?;
        if let Some((token, at)) = parser.tokens.get(parser.pos) {
            let why = match token {
                Token::Close => format!("the “)” at character {at} closes no parenthesis"),
                other => format!("{} at character {at} is not expected there", other.shown()),
            };
            return Err(format!("invalid query {input:?}: {why}"));
        }
        Ok(expr)
    }

    /// The label names this expression asks for (not under a NOT).
    pub fn positive_labels(&self) -> Vec<String> {
        match self {
            Self::All
            | Self::Not(_)
            | Self::AnyLabel
            | Self::Name(_)
            | Self::Meta(..)
            | Self::Taken(..)
            | Self::Text(_) => Vec::new(),
            Self::Label(l) => vec![l.clone()],
            Self::And(items) | Self::Or(items) => items.iter().flat_map(Self::positive_labels).collect(),
        }
    }

    /// Whether a label or `has:labels` appears anywhere in the expression.
    fn mentions_labels(&self) -> bool {
        match self {
            Self::All | Self::Name(_) | Self::Meta(..) | Self::Taken(..) | Self::Text(_) => false,
            Self::Label(_) | Self::AnyLabel => true,
            Self::Not(inner) => inner.mentions_labels(),
            Self::And(items) | Self::Or(items) => items.iter().any(Self::mentions_labels),
        }
    }

    /// The expression a search runs at `min_confidence`: a minimum above 0 with no
    /// label asked for means "photos with some label at the minimum or above" (the
    /// UI's slider on `*` or on a file-name search). Otherwise the minimum applies to
    /// the labels asked for.
    pub fn at_confidence(&self, min_confidence: f32) -> Self {
        if min_confidence <= 0.0 || self.mentions_labels() {
            return self.clone();
        }
        match self {
            Self::All => Self::AnyLabel,
            other => Self::And(vec![other.clone(), Self::AnyLabel]),
        }
    }
}

mod eval;

#[cfg(test)]
mod tests;
