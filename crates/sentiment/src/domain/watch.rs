//! Watchlist matching. Terms and texts are compared after the same folding, [`fold`]: Unicode
//! compatibility folding (full-width `ＡＢＣ１２３` is `abc123`), lower case and traditional characters
//! to simplified ones (`質量問題` is `质量问题`), so every variant of a brand or a risk word is one term.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use socialops_scorer::fold;

/// At most this many terms per list, and characters per term.
pub const MAX_TERMS: usize = 200;
pub const MAX_TERM_CHARS: usize = 64;

/// What a watchlist looks for: brand and product names, and risk words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Terms {
    pub brands: Vec<String>,
    pub products: Vec<String>,
    pub risk_words: Vec<String>,
}

impl Terms {
    /// Trims every term, drops blank and repeated ones (after folding) and checks the limits. Errors
    /// name the list and the term, for the caller.
    pub fn cleaned(self) -> Result<Self, String> {
        let mut seen = std::collections::HashSet::new();
        let mut clean = |name: &str, terms: Vec<String>| -> Result<Vec<String>, String> {
            if terms.len() > MAX_TERMS {
                return Err(format!(
                    "{name}: {} terms, more than the limit of {MAX_TERMS}",
                    terms.len()
                ));
            }
            let mut kept = Vec::with_capacity(terms.len());
            for term in terms {
                let term = term.trim();
                if term.is_empty() {
                    continue;
                }
                if term.chars().count() > MAX_TERM_CHARS {
                    return Err(format!(
                        "{name}: `{term}` is longer than {MAX_TERM_CHARS} characters"
                    ));
                }
                if seen.insert((name.to_owned(), fold(term).into_owned())) {
                    kept.push(term.to_owned());
                }
            }
            Ok(kept)
        };
        let cleaned = Self {
            brands: clean("brands", self.brands)?,
            products: clean("products", self.products)?,
            risk_words: clean("risk_words", self.risk_words)?,
        };
        if cleaned.brands.is_empty() && cleaned.products.is_empty() && cleaned.risk_words.is_empty()
        {
            return Err("a watchlist needs at least one brand, product or risk word".into());
        }
        Ok(cleaned)
    }
}

/// The outcome of matching one text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The text names one of the watchlist's risk words.
    pub risk: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TermKind {
    Name,
    Risk,
}

/// One watchlist's terms, compiled once into an Aho-Corasick automaton over folded text.
#[derive(Debug, Clone)]
pub struct Matcher {
    automaton: Option<AhoCorasick>,
    kinds: Vec<TermKind>,
    /// Whether each folded pattern starts and ends with an ASCII letter or digit, so that `ace` does
    /// not match inside `face`.
    word_edges: Vec<(bool, bool)>,
    has_names: bool,
}

impl Matcher {
    pub fn new(terms: &Terms) -> Self {
        let mut patterns = Vec::new();
        let mut kinds = Vec::new();
        for (list, kind) in [
            (&terms.brands, TermKind::Name),
            (&terms.products, TermKind::Name),
            (&terms.risk_words, TermKind::Risk),
        ] {
            for term in list {
                let folded = fold(term.trim());
                if !folded.is_empty() {
                    patterns.push(folded.into_owned());
                    kinds.push(kind);
                }
            }
        }
        let word_edges = patterns
            .iter()
            .map(|p| {
                let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
                (alnum(p.chars().next()), alnum(p.chars().next_back()))
            })
            .collect();
        let automaton = (!patterns.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&patterns)
                .expect("a few hundred short patterns fit the automaton's limits")
        });
        Self {
            automaton,
            has_names: kinds.contains(&TermKind::Name),
            kinds,
            word_edges,
        }
    }

    /// Whether `folded` (a text passed through [`fold`]) is a mention: it names a brand or product,
    /// or, for a watchlist of risk words only, a risk word.
    pub fn find(&self, folded: &str) -> Option<Hit> {
        let automaton = self.automaton.as_ref()?;
        let (mut name, mut risk) = (false, false);
        for found in automaton.find_overlapping_iter(folded) {
            let id = found.pattern().as_usize();
            let (starts_word, ends_word) = self.word_edges[id];
            let alnum_at = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
            if (starts_word && alnum_at(folded[..found.start()].chars().next_back()))
                || (ends_word && alnum_at(folded[found.end()..].chars().next()))
            {
                continue;
            }
            match self.kinds[id] {
                TermKind::Name => name = true,
                TermKind::Risk => risk = true,
            }
            if name && risk {
                break;
            }
        }
        let mention = if self.has_names { name } else { risk };
        mention.then_some(Hit { risk })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(brands: &[&str], products: &[&str], risk: &[&str]) -> Terms {
        let own = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        Terms {
            brands: own(brands),
            products: own(products),
            risk_words: own(risk),
        }
    }

    fn hit(matcher: &Matcher, text: &str) -> Option<Hit> {
        matcher.find(&fold(text))
    }

    #[test]
    fn a_simplified_term_matches_a_traditional_full_width_mention() {
        let matcher = Matcher::new(&terms(&["积雪草精华"], &[], &["质量问题"]));
        assert_eq!(
            hit(&matcher, "積雪草精華ＣＩＣＡ有質量問題！！"),
            Some(Hit { risk: true })
        );
    }

    #[test]
    fn simplified_traditional_and_width_variants_match_alike() {
        let matcher = Matcher::new(&terms(&["花西子"], &["積雪草精華"], &["质量问题", "投诉"]));
        let simplified = hit(&matcher, "积雪草精华有质量问题，我要投诉").unwrap();
        assert!(simplified.risk);
        let traditional = hit(&matcher, "積雪草精華有質量問題").unwrap();
        assert!(traditional.risk);
        assert_eq!(hit(&matcher, "花西子的新品不错"), Some(Hit { risk: false }));
        assert_eq!(
            hit(&matcher, "质量问题好多"),
            None,
            "risk word without a name"
        );
    }

    #[test]
    fn latin_names_match_whole_words_in_any_width_or_case() {
        let matcher = Matcher::new(&terms(&["ACE"], &[], &["refund"]));
        assert!(hit(&matcher, "ace的面霜").is_some());
        assert!(hit(&matcher, "ＡＣＥ 面霜 refund please").unwrap().risk);
        assert!(hit(&matcher, "my face cream").is_none());
        assert!(hit(&matcher, "aces high").is_none());
    }

    #[test]
    fn a_risk_only_watchlist_matches_on_risk_words() {
        let matcher = Matcher::new(&terms(&[], &[], &["食品安全"]));
        assert_eq!(hit(&matcher, "这是食品安全问题"), Some(Hit { risk: true }));
        assert_eq!(hit(&matcher, "很好吃"), None);
    }

    #[test]
    fn cleaning_trims_drops_repeats_and_checks_limits() {
        let cleaned = terms(&[" 花西子 ", "", "花西子"], &["精華", "精华"], &[])
            .cleaned()
            .unwrap();
        assert_eq!(cleaned.brands, ["花西子"]);
        assert_eq!(cleaned.products, ["精華"], "folded repeats are one term");
        assert!(terms(&[" "], &[], &[]).cleaned().is_err());
        let long = "长".repeat(MAX_TERM_CHARS + 1);
        let error = terms(&[&long], &[], &[]).cleaned().unwrap_err();
        assert!(error.starts_with("brands:"), "{error}");
    }
}
