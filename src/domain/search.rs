//! How text is cut into search terms, the same for tweets being indexed and
//! for queries, on both databases: words are runs of letters and digits
//! (any script); apostrophes inside a word are dropped (do'stlar, do’stlar
//! and doʻstlar all become `dostlar`); accents are removed and case folded.
//! The databases only ever see these terms, never the user's raw text.

use unicode_normalization::UnicodeNormalization;

/// Longest search text accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 512;
/// At most this many words and phrase words are used from one query.
pub const MAX_QUERY_TERMS: usize = 32;

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | 'ʻ' | 'ʼ' | '‘' | '`' | '´')
}

fn fold(word: &str) -> String {
    word.nfkd().filter(|c| !is_combining(*c)).flat_map(char::to_lowercase).collect()
}

fn is_combining(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// The terms of `text`, in order.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if is_apostrophe(c) {
            // Inside a word it is dropped and the word goes on; elsewhere it ends one.
            let inside = !word.is_empty() && chars.peek().is_some_and(|n| n.is_alphanumeric() && !is_apostrophe(*n));
            if !inside && !word.is_empty() {
                out.push(fold(&std::mem::take(&mut word)));
            }
        } else if c.is_alphanumeric() || is_combining(c) {
            word.push(c);
        } else if !word.is_empty() {
            out.push(fold(&std::mem::take(&mut word)));
        }
    }
    if !word.is_empty() {
        out.push(fold(&word));
    }
    out.retain(|t| !t.is_empty());
    out
}

/// What the stored text is indexed as: its terms, separated by spaces.
pub fn index_text(content: &str) -> String {
    terms(content).join(" ")
}

/// A parsed tweet search: every word, and every phrase (adjacent, in order), must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TweetQuery {
    pub words: Vec<String>,
    pub phrases: Vec<Vec<String>>,
}

impl TweetQuery {
    /// Parses search text: `"quoted parts"` are phrases (an unbalanced quote
    /// runs to the end), the rest are words. Operators of any query language
    /// are just words here.
    pub fn parse(text: &str) -> Self {
        let text = text.replace(['“', '”', '„'], "\"");
        let mut query = Self::default();
        for (i, part) in text.split('"').enumerate() {
            let t = terms(part);
            if i % 2 == 1 && t.len() > 1 {
                query.phrases.push(t);
            } else {
                query.words.extend(t);
            }
        }
        // Bound the work one query can ask for.
        let mut budget = MAX_QUERY_TERMS;
        query.words.truncate(budget);
        budget -= query.words.len();
        query.phrases.retain_mut(|p| {
            if budget == 0 {
                return false;
            }
            p.truncate(budget);
            budget -= p.len();
            p.len() > 1
        });
        query.words.sort();
        query.words.dedup();
        query
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.phrases.is_empty()
    }

    /// Whether indexed text (`index_text`'s terms, separated by spaces)
    /// matches, as the full-text indexes would decide: every word is one of
    /// its terms, and every phrase's terms follow one another in it.
    pub fn matches(&self, indexed: &str) -> bool {
        let terms: Vec<&str> = indexed.split(' ').filter(|t| !t.is_empty()).collect();
        self.words.iter().all(|w| terms.contains(&w.as_str()))
            && self.phrases.iter().all(|p| terms.windows(p.len()).any(|run| run.iter().zip(p).all(|(t, w)| *t == w)))
    }

    /// An FTS5 MATCH expression: every term double-quoted (terms hold only
    /// letters and digits), so no FTS5 operator can be expressed.
    pub fn fts5(&self) -> String {
        let quote = |t: &str| format!("\"{}\"", t.replace('"', "\"\""));
        self.words
            .iter()
            .map(|w| quote(w))
            .chain(self.phrases.iter().map(|p| quote(&p.join(" "))))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// A PostgreSQL tsquery (for `to_tsquery('simple', …)`): quoted lexemes,
    /// `&` between words, `<->` inside phrases.
    pub fn tsquery(&self) -> String {
        let lexeme = |t: &str| format!("'{}'", t.replace('\'', "''").replace('\\', "\\\\"));
        self.words
            .iter()
            .map(|w| lexeme(w))
            .chain(self.phrases.iter().map(|p| format!("({})", p.iter().map(|t| lexeme(t)).collect::<Vec<_>>().join(" <-> "))))
            .collect::<Vec<_>>()
            .join(" & ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_fold_case_accents_and_inner_apostrophes() {
        assert_eq!(terms("Do'stlar, DO’STLAR doʻstlar!"), ["dostlar", "dostlar", "dostlar"]);
        assert_eq!(terms("Café CAFE naïve"), ["cafe", "cafe", "naive"]);
        assert_eq!(terms("Привет, МИР"), ["привет", "мир"]);
        assert_eq!(terms("'quoted' rock'n'roll x'"), ["quoted", "rocknroll", "x"]);
        assert_eq!(terms("emoji 🐦 and_underscore 42"), ["emoji", "and", "underscore", "42"]);
    }

    #[test]
    fn queries_have_words_and_phrases_and_no_operators() {
        let q = TweetQuery::parse(r#"hello "big world" OR NEAR(x) -y *"#);
        assert_eq!(q.words, ["hello", "near", "or", "x", "y"]);
        assert_eq!(q.phrases, [vec!["big".to_owned(), "world".to_owned()]]);
        assert_eq!(q.fts5(), r#""hello" AND "near" AND "or" AND "x" AND "y" AND "big world""#);
        assert_eq!(q.tsquery(), "'hello' & 'near' & 'or' & 'x' & 'y' & ('big' <-> 'world')");
        let unbalanced = TweetQuery::parse(r#"a "b c"#);
        assert_eq!(unbalanced.phrases, [vec!["b".to_owned(), "c".to_owned()]]);
        assert!(TweetQuery::parse(r#"" ' % _ ( ) * -"#).is_empty());
        assert!(TweetQuery::parse(&"word ".repeat(400)).words.len() <= MAX_QUERY_TERMS);
    }

    #[test]
    fn matches_words_anywhere_and_phrases_in_order() {
        let indexed = index_text("The big, old WORLD turns; a big world.");
        assert!(TweetQuery::parse("world big").matches(&indexed));
        assert!(TweetQuery::parse(r#""big world" turns"#).matches(&indexed));
        assert!(TweetQuery::parse(r#""old world""#).matches(&indexed));
        assert!(!TweetQuery::parse(r#""world big""#).matches(&indexed));
        assert!(!TweetQuery::parse("worl").matches(&indexed), "a word matches whole terms only");
        assert!(!TweetQuery::parse("big planet").matches(&indexed), "every word must match");
        assert!(!TweetQuery::parse(r#""turns a big world" x"#).matches(&indexed));
    }
}
