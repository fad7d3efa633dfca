//! Tags on a profile: attribute tags from identify attributes (`gender:female`), behaviour tags from
//! product categories (`bought:skincare`, `clicked:makeup`) and need tags from rules over comment
//! text (a comment containing "敏感肌" tags the user `need:sensitive-skin`).
//!
//! Text is compared after [`fold`]: full-width ASCII forms and the ideographic space become their
//! half-width forms, and ASCII letters are lower-cased. Nothing else changes, so Chinese text matches
//! as written.

use std::collections::BTreeSet;

/// The identify attributes that become attribute tags.
pub const ATTRIBUTE_KEYS: &[&str] = &["gender", "age_band", "region"];

/// Longest tag accepted, in characters.
pub const MAX_TAG_CHARS: usize = 64;

/// Full-width to half-width for the ASCII range, then ASCII lower case.
pub fn fold(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagRuleError {
    #[error("the pattern is empty")]
    EmptyPattern,
    #[error("invalid tag `{0}`: use 1 to 64 characters with no spaces or control characters")]
    InvalidTag(String),
}

/// Checks a tag as typed by an operator or built from data.
pub fn validate_tag(tag: &str) -> Result<(), TagRuleError> {
    let len = tag.chars().count();
    if len == 0 || len > MAX_TAG_CHARS || tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TagRuleError::InvalidTag(tag.to_owned()));
    }
    Ok(())
}

/// "A comment containing `pattern` tags its author `tag`." The pattern is kept folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedTagRule {
    pattern: String,
    tag: String,
}

impl NeedTagRule {
    pub fn new(pattern: &str, tag: &str) -> Result<Self, TagRuleError> {
        let pattern = fold(pattern.trim());
        if pattern.is_empty() {
            return Err(TagRuleError::EmptyPattern);
        }
        validate_tag(tag)?;
        Ok(Self {
            pattern,
            tag: tag.to_owned(),
        })
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// The tags of every rule whose pattern occurs in `text`.
pub fn need_tags(text: &str, rules: &[NeedTagRule]) -> BTreeSet<String> {
    let folded = fold(text);
    rules
        .iter()
        .filter(|rule| folded.contains(rule.pattern.as_str()))
        .map(|rule| rule.tag.clone())
        .collect()
}

/// A tag value: folded, trimmed, inner whitespace runs as one `-`. `None` when nothing is left.
fn tag_value(raw: &str) -> Option<String> {
    let folded = fold(raw);
    let value = folded.split_whitespace().collect::<Vec<_>>().join("-");
    (!value.is_empty()).then_some(value)
}

fn tag(prefix: &str, raw: &str) -> Option<String> {
    let tag = format!("{prefix}:{}", tag_value(raw)?);
    validate_tag(&tag).is_ok().then_some(tag)
}

/// Attribute tags for the [`ATTRIBUTE_KEYS`] among `attributes`; other keys and blank values are
/// ignored.
pub fn attribute_tags<'a>(
    attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeSet<String> {
    attributes
        .into_iter()
        .filter(|(key, _)| ATTRIBUTE_KEYS.contains(key))
        .filter_map(|(key, value)| tag(key, value))
        .collect()
}

/// Applies identify attributes to a tag set: a key that is present replaces the tags it set before
/// (`gender:male` after `gender:female` leaves only `gender:male`); a blank value clears it.
pub fn apply_attribute_tags<'a>(
    tags: &mut BTreeSet<String>,
    attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    for (key, value) in attributes {
        if !ATTRIBUTE_KEYS.contains(&key) {
            continue;
        }
        let prefix = format!("{key}:");
        tags.retain(|t| !t.starts_with(&prefix));
        if let Some(t) = tag(key, value) {
            tags.insert(t);
        }
    }
}

/// What a user did with a product category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Bought,
    Clicked,
}

impl Behaviour {
    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::Bought => "bought",
            Behaviour::Clicked => "clicked",
        }
    }
}

/// `bought:skincare`, `clicked:makeup`; `None` for a blank category.
pub fn behaviour_tag(behaviour: Behaviour, category: &str) -> Option<String> {
    tag(behaviour.as_str(), category)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<NeedTagRule> {
        vec![
            NeedTagRule::new("敏感肌", "need:sensitive-skin").unwrap(),
            NeedTagRule::new("SPF", "need:sun-protection").unwrap(),
            NeedTagRule::new("防晒", "need:sun-protection").unwrap(),
            NeedTagRule::new("oily skin", "need:oil-control").unwrap(),
        ]
    }

    #[test]
    fn a_comment_with_the_pattern_gets_the_tag() {
        let tags = need_tags("我是敏感肌，这个能用吗？", &rules());
        assert_eq!(tags, BTreeSet::from(["need:sensitive-skin".to_owned()]));
        assert!(need_tags("很好用", &rules()).is_empty());
    }

    #[test]
    fn matching_folds_case_and_width() {
        let r = rules();
        for text in ["spf 50 够吗", "SpF50", "ＳＰＦ５０", "ｓｐｆ"] {
            assert_eq!(
                need_tags(text, &r),
                BTreeSet::from(["need:sun-protection".to_owned()]),
                "{text}"
            );
        }
        assert_eq!(
            need_tags("ＯＩＬＹ\u{3000}SKIN here", &r),
            BTreeSet::from(["need:oil-control".to_owned()])
        );
    }

    #[test]
    fn several_rules_and_one_tag_from_two_rules() {
        let tags = need_tags("敏感肌要防晒，SPF多少合适", &rules());
        assert_eq!(
            tags,
            BTreeSet::from([
                "need:sensitive-skin".to_owned(),
                "need:sun-protection".to_owned()
            ])
        );
    }

    #[test]
    fn rules_are_validated_and_patterns_folded() {
        assert_eq!(
            NeedTagRule::new("  ", "need:x"),
            Err(TagRuleError::EmptyPattern)
        );
        assert!(matches!(
            NeedTagRule::new("x", "need: x"),
            Err(TagRuleError::InvalidTag(_))
        ));
        assert!(matches!(
            NeedTagRule::new("x", ""),
            Err(TagRuleError::InvalidTag(_))
        ));
        assert!(NeedTagRule::new("x", &"a".repeat(65)).is_err());
        assert_eq!(NeedTagRule::new(" ＡbC ", "t").unwrap().pattern(), "abc");
    }

    #[test]
    fn attribute_tags_from_known_keys() {
        let tags = attribute_tags([
            ("gender", "Female"),
            ("age_band", "25-34"),
            ("region", "Shanghai Pudong"),
            ("nickname", "amy"),
            ("gender", "  "),
        ]);
        assert_eq!(
            tags,
            BTreeSet::from([
                "age_band:25-34".to_owned(),
                "gender:female".to_owned(),
                "region:shanghai-pudong".to_owned(),
            ])
        );
    }

    #[test]
    fn a_new_attribute_value_replaces_the_old_tag() {
        let mut tags = BTreeSet::from(["gender:female".to_owned(), "vip".to_owned()]);
        apply_attribute_tags(&mut tags, [("gender", "male"), ("region", "北京")]);
        assert_eq!(
            tags,
            BTreeSet::from([
                "gender:male".to_owned(),
                "region:北京".to_owned(),
                "vip".to_owned()
            ])
        );
        apply_attribute_tags(&mut tags, [("region", "")]);
        assert!(!tags.iter().any(|t| t.starts_with("region:")));
    }

    #[test]
    fn behaviour_tags_from_categories() {
        assert_eq!(
            behaviour_tag(Behaviour::Bought, "Skincare").as_deref(),
            Some("bought:skincare")
        );
        assert_eq!(
            behaviour_tag(Behaviour::Clicked, "makeup").as_deref(),
            Some("clicked:makeup")
        );
        assert_eq!(behaviour_tag(Behaviour::Clicked, " "), None);
    }
}
