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
//! ```
//! Labels match case-insensitively and whole (`cat` does not match `Tiger Cat`;
//! Tiger Cat's parent Cat does, with its summed confidence).

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    All,
    /// A label name, lowercased.
    Label(String),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    And,
    Or,
    Not,
    Open,
    Close,
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '(' || c == ')' {
            chars.next();
            tokens.push(if c == '(' { Token::Open } else { Token::Close });
            continue;
        }
        if c == '"' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(ch) => text.push(ch),
                    None => return Err("a quote is not closed".into()),
                }
            }
            tokens.push(Token::Quoted(text));
            continue;
        }
        if c == '-' {
            chars.next();
            tokens.push(Token::Not);
            continue;
        }
        let mut word = String::new();
        while let Some(&ch) = chars.peek() {
            if ch.is_whitespace() || ch == '(' || ch == ')' || ch == '"' {
                break;
            }
            word.push(ch);
            chars.next();
        }
        tokens.push(match word.as_str() {
            "AND" | "&&" => Token::And,
            "OR" | "||" => Token::Or,
            "NOT" | "!" => Token::Not,
            _ => Token::Word(word),
        });
    }
    Ok(tokens)
}

/// How deep parentheses and NOTs may nest: the parser, the backends' translations
/// and dropping an expression all recurse once a level.
pub const MAX_DEPTH: usize = 64;

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
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
                Some(Token::Word(_) | Token::Quoted(_) | Token::Not | Token::Open) => items.push(self.unary()?),
                _ => break,
            }
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::And(items) })
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
        match self.next() {
            Some(Token::Not) => Ok(Expr::Not(Box::new(self.unary()?))),
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("a parenthesis is not closed".into()),
                }
            }
            Some(Token::Word(w)) if w == "*" => Ok(Expr::All),
            Some(Token::Word(w) | Token::Quoted(w)) => {
                let name = w.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
                if name.is_empty() {
                    return Err("an empty label name".into());
                }
                Ok(Expr::Label(name))
            }
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("the query ends too early".into()),
        }
    }
}

impl Expr {
    /// Parses a query; an empty query matches everything.
    pub fn parse(input: &str) -> Result<Self, String> {
        let tokens = tokenize(input).map_err(|e| format!("invalid query {input:?}: {e}"))?;
        if tokens.is_empty() {
            return Ok(Self::All);
        }
        let mut parser = Parser { tokens, pos: 0, depth: 0 };
        let expr = parser.or().map_err(|e| format!("invalid query {input:?}: {e}"))?;
        if parser.pos < parser.tokens.len() {
            return Err(format!("invalid query {input:?}: unexpected {:?}", parser.tokens[parser.pos]));
        }
        Ok(expr)
    }

    /// The label names this expression asks for (not under a NOT).
    pub fn positive_labels(&self) -> Vec<String> {
        match self {
            Self::All | Self::Not(_) => Vec::new(),
            Self::Label(l) => vec![l.clone()],
            Self::And(items) | Self::Or(items) => items.iter().flat_map(Self::positive_labels).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> Expr {
        Expr::Label(s.into())
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(Expr::parse("Cat").unwrap(), l("cat"));
        assert_eq!(Expr::parse("dog AND grass").unwrap(), Expr::And(vec![l("dog"), l("grass")]));
        assert_eq!(Expr::parse("dog grass").unwrap(), Expr::And(vec![l("dog"), l("grass")]));
        assert_eq!(Expr::parse("cat OR dog").unwrap(), Expr::Or(vec![l("cat"), l("dog")]));
        assert_eq!(Expr::parse("cat -dog").unwrap(), Expr::And(vec![l("cat"), Expr::Not(Box::new(l("dog")))]));
        assert_eq!(Expr::parse("\"Golden  Retriever\"").unwrap(), l("golden retriever"));
        assert_eq!(
            Expr::parse("(cat OR dog) AND NOT sofa").unwrap(),
            Expr::And(vec![Expr::Or(vec![l("cat"), l("dog")]), Expr::Not(Box::new(l("sofa")))])
        );
        assert_eq!(
            Expr::parse("a OR b c").unwrap(),
            Expr::Or(vec![l("a"), Expr::And(vec![l("b"), l("c")])]),
            "AND binds tighter"
        );
        assert_eq!(Expr::parse("").unwrap(), Expr::All);
        assert_eq!(Expr::parse("*").unwrap(), Expr::All);
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
    fn rejects_malformed_queries_clearly() {
        for bad in ["(cat", "\"cat", "cat AND", "cat)", "OR"] {
            let err = Expr::parse(bad).unwrap_err();
            assert!(err.starts_with("invalid query"), "{bad}: {err}");
        }
    }
}
