//! Content review before a campaign starts: the claims the advertising law forbids (absolute terms,
//! efficacy guarantees, medical claims for cosmetics and food), topics platforms refuse in ads, and
//! the tenant's own banned words. The built-in list is `data/advertising_law.toml`; its sources and
//! choices are in `data/README.md`.
//!
//! Terms are found in the matching spelling ([`fold_for_matching`]), so `極品`, `ＮＯ．１` and `最*好`
//! are found as `极品`, `NO.1` and `最好`, and reported where and as they were written. A finding
//! asks a person to look; it does not decide.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};

use super::campaign::{Kind, UnknownName};
use super::matching::{Folded, fold_for_matching};

/// What is being advertised: medical claims are looked for in cosmetics and food only (drug and
/// device advertising states approved indications, and its content is approved before it runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductCategory {
    #[default]
    General,
    Cosmetics,
    Food,
    Medical,
}

impl ProductCategory {
    pub const ALL: &'static [ProductCategory] = &[
        ProductCategory::General,
        ProductCategory::Cosmetics,
        ProductCategory::Food,
        ProductCategory::Medical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProductCategory::General => "general",
            ProductCategory::Cosmetics => "cosmetics",
            ProductCategory::Food => "food",
            ProductCategory::Medical => "medical",
        }
    }
}

impl fmt::Display for ProductCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProductCategory {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .iter()
            .copied()
            .find(|category| category.as_str() == name)
            .ok_or_else(|| UnknownName {
                what: "ProductCategory",
                name: name.to_owned(),
            })
    }
}

/// Why a term was reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingRule {
    /// One of the tenant's banned words.
    BannedWord,
    /// A superlative or absolute claim (《广告法》第九条第三项 and the like).
    Absolute,
    /// A guarantee of effect, safety, passing an exam or a return.
    Efficacy,
    /// A disease-treatment or medical claim for a cosmetic or a food.
    Medical,
    /// A topic platforms refuse in ads (gambling, surrogacy …).
    PlatformSensitive,
}

impl FindingRule {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingRule::BannedWord => "banned_word",
            FindingRule::Absolute => "absolute",
            FindingRule::Efficacy => "efficacy",
            FindingRule::Medical => "medical",
            FindingRule::PlatformSensitive => "platform_sensitive",
        }
    }
}

impl fmt::Display for FindingRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One term found in a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The term as listed (`最好`, or the tenant's banned word).
    pub term: String,
    /// The term as written in the text (`最 * 好`, `極品`).
    pub matched: String,
    pub rule: FindingRule,
    /// The provision it falls under, where one can be named.
    pub article: Option<String>,
    /// Where it was written: char offsets in the reviewed text, `end` exclusive.
    pub start: usize,
    pub end: usize,
}

/// The review of one tenant: the built-in list and the tenant's banned words.
#[derive(Debug, Clone)]
pub struct Reviewer {
    banned: Option<Terms>,
}

impl Reviewer {
    /// Blank banned words, and words that fold to one already given, are dropped.
    pub fn new(banned_words: &[String]) -> Self {
        let mut seen = std::collections::HashSet::new();
        let entries: Vec<Entry> = banned_words
            .iter()
            .filter_map(|word| {
                let folded = fold_for_matching(word.trim()).text;
                (!folded.is_empty() && seen.insert(folded.clone())).then(|| Entry {
                    term: word.trim().to_owned(),
                    folded,
                    rule: FindingRule::BannedWord,
                    article: None,
                    exceptions: Vec::new(),
                })
            })
            .collect();
        Self {
            banned: (!entries.is_empty()).then(|| Terms::new(entries)),
        }
    }

    /// Every listed claim and banned word in `text`, in the order they appear. Where terms overlap,
    /// the one starting first is reported, and of those the longest; built-in terms and banned
    /// words are resolved apart, so a banned word never hides a legal finding.
    pub fn review(&self, kind: Kind, category: ProductCategory, text: &str) -> Vec<Finding> {
        let folded = fold_for_matching(text);
        let list = &*BUILT_IN;
        let mut spans = list
            .terms
            .find(&folded, |entry| applies(entry.rule, kind, category));
        if let Some(banned) = &self.banned {
            spans.extend(banned.find(&folded, |_| true));
        }
        if spans.is_empty() {
            return Vec::new();
        }
        let char_bytes: Vec<usize> = text
            .char_indices()
            .map(|(at, _)| at)
            .chain(std::iter::once(text.len()))
            .collect();
        let mut findings: Vec<Finding> = spans
            .into_iter()
            .map(|(start, end, entry)| {
                let (start, end) = folded.original_span(start, end);
                let article = match (entry.rule, list.medical_article(category)) {
                    (FindingRule::Medical, Some(law)) => Some(match &entry.article {
                        Some(article) => format!("{article}；{law}"),
                        None => law.to_owned(),
                    }),
                    _ => entry.article.clone(),
                };
                Finding {
                    term: entry.term.clone(),
                    matched: text[char_bytes[start]..char_bytes[end]].to_owned(),
                    rule: entry.rule,
                    article,
                    start,
                    end,
                }
            })
            .collect();
        findings.sort_by_key(|finding| (finding.start, finding.end));
        findings
    }
}

fn applies(rule: FindingRule, kind: Kind, category: ProductCategory) -> bool {
    match rule {
        FindingRule::BannedWord | FindingRule::Absolute | FindingRule::Efficacy => true,
        FindingRule::Medical => {
            matches!(category, ProductCategory::Cosmetics | ProductCategory::Food)
        }
        FindingRule::PlatformSensitive => kind == Kind::Ad,
    }
}

/// A listed term, folded.
#[derive(Debug, Clone)]
struct Entry {
    term: String,
    folded: String,
    rule: FindingRule,
    article: Option<String>,
    exceptions: Vec<Exception>,
}

/// An ordinary phrase containing a term: `text` folded, with the term at byte `term_at` of it (one
/// `Exception` for every place the term occurs in the phrase).
#[derive(Debug, Clone)]
struct Exception {
    text: String,
    term_at: usize,
}

impl Entry {
    fn excepted(&self, folded: &str, start: usize) -> bool {
        self.exceptions.iter().any(|exception| {
            start
                .checked_sub(exception.term_at)
                .and_then(|from| folded.get(from..))
                .is_some_and(|rest| rest.starts_with(&exception.text))
        })
    }
}

/// A set of entries and one automaton over their folded terms.
#[derive(Debug, Clone)]
struct Terms {
    entries: Vec<Entry>,
    automaton: AhoCorasick,
}

impl Terms {
    fn new(entries: Vec<Entry>) -> Self {
        // Every occurrence is looked at, so that a term shadowed by a longer one that does not
        // apply (gated off, or excepted at that place) is still found; the leftmost-longest choice
        // is made afterwards among those that do.
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(entries.iter().map(|entry| &entry.folded))
            .expect("a few hundred short terms fit the automaton's limits");
        Self { entries, automaton }
    }

    /// The leftmost-longest non-overlapping matches of the entries `wanted` keeps, as byte ranges of
    /// `folded.text`.
    fn find(
        &self,
        folded: &Folded,
        wanted: impl Fn(&Entry) -> bool,
    ) -> Vec<(usize, usize, &Entry)> {
        let text = folded.text.as_str();
        let mut found: Vec<(usize, usize, &Entry)> = self
            .automaton
            .find_overlapping_iter(text)
            .map(|found| {
                let entry = &self.entries[found.pattern().as_usize()];
                (found.start(), found.end(), entry)
            })
            .filter(|&(start, end, entry)| {
                wanted(entry)
                    && folded.separates_words(start)
                    && folded.separates_words(end)
                    && folded.within_one_clause(start, end)
                    && !entry.excepted(text, start)
            })
            .collect();
        found.sort_by_key(|&(start, end, _)| (start, std::cmp::Reverse(end)));
        let mut taken_to = 0;
        found.retain(|&(start, end, _)| {
            let free = start >= taken_to;
            if free {
                taken_to = end;
            }
            free
        });
        found
    }
}

/// The list in `data/advertising_law.toml`, parsed and compiled on first use.
static BUILT_IN: LazyLock<BuiltIn> = LazyLock::new(|| {
    BuiltIn::parse(include_str!("../../data/advertising_law.toml"))
        .unwrap_or_else(|error| panic!("data/advertising_law.toml: {error}"))
});

struct BuiltIn {
    terms: Terms,
    medical: MedicalArticles,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFile {
    medical: MedicalArticles,
    entry: Vec<ListEntry>,
}

/// The law a medical claim falls under for each product category it is looked for in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MedicalArticles {
    cosmetics: String,
    food: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListEntry {
    term: String,
    category: ListCategory,
    article: Option<String>,
    #[serde(default)]
    exceptions: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ListCategory {
    Absolute,
    Efficacy,
    Medical,
    PlatformSensitive,
}

impl BuiltIn {
    /// Every term must fold to something and to a spelling no other term has; every exception
    /// must contain its term.
    fn parse(source: &str) -> Result<Self, String> {
        let file: ListFile = toml::from_str(source).map_err(|error| error.to_string())?;
        let mut seen = std::collections::HashSet::new();
        let mut entries = Vec::with_capacity(file.entry.len());
        for listed in file.entry {
            let folded = fold_for_matching(&listed.term).text;
            if folded.is_empty() || !seen.insert(folded.clone()) {
                return Err(format!("`{}` is empty or listed twice", listed.term));
            }
            let mut exceptions = Vec::new();
            for phrase in &listed.exceptions {
                let text = fold_for_matching(phrase).text;
                let before = exceptions.len();
                exceptions.extend(text.match_indices(&folded).map(|(term_at, _)| Exception {
                    text: text.clone(),
                    term_at,
                }));
                if exceptions.len() == before {
                    return Err(format!(
                        "exception `{phrase}` does not contain `{}`",
                        listed.term
                    ));
                }
            }
            entries.push(Entry {
                term: listed.term,
                folded,
                rule: match listed.category {
                    ListCategory::Absolute => FindingRule::Absolute,
                    ListCategory::Efficacy => FindingRule::Efficacy,
                    ListCategory::Medical => FindingRule::Medical,
                    ListCategory::PlatformSensitive => FindingRule::PlatformSensitive,
                },
                article: listed.article,
                exceptions,
            });
        }
        Ok(Self {
            terms: Terms::new(entries),
            medical: file.medical,
        })
    }

    fn medical_article(&self, category: ProductCategory) -> Option<&str> {
        match category {
            ProductCategory::Cosmetics => Some(&self.medical.cosmetics),
            ProductCategory::Food => Some(&self.medical.food),
            ProductCategory::General | ProductCategory::Medical => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(kind: Kind, category: ProductCategory, text: &str) -> Vec<Finding> {
        Reviewer::new(&[]).review(kind, category, text)
    }

    /// The listed terms found in an ad for a general product.
    fn terms(text: &str) -> Vec<String> {
        review(Kind::Ad, ProductCategory::General, text)
            .into_iter()
            .map(|finding| finding.term)
            .collect()
    }

    #[test]
    fn the_list_loads_and_is_of_a_reasonable_size() {
        let entries = &BUILT_IN.terms.entries;
        assert!((60..=130).contains(&entries.len()), "{}", entries.len());
        for entry in entries {
            if let Some(article) = &entry.article {
                assert!(article.starts_with('《'), "{}: {article}", entry.term);
            }
        }
    }

    #[test]
    fn claims_are_found() {
        for (text, term) in [
            ("我们的面霜效果最好", "最好"),
            ("年度最佳单品", "最佳"),
            ("全场最低价，错过再等一年", "最低价"),
            ("国货第一品牌", "第一"),
            ("销量第一", "第一"),
            ("同类产品中排名第一位", "第一"),
            ("全国唯一授权", "唯一"),
            ("国家级认证工艺", "国家级"),
            ("顶级原料", "顶级"),
            ("极品好茶", "极品"),
            ("一个疗程根治脱发", "根治"),
            ("百分百纯天然", "百分百"),
            ("天然成分无副作用", "无副作用"),
            ("稳赚不赔的好项目", "稳赚"),
        ] {
            assert_eq!(terms(text), [term], "{text}");
        }
        assert!(
            terms("治愈痘痘").is_empty(),
            "medical claims need a category"
        );
        let cosmetic = review(Kind::Ad, ProductCategory::Cosmetics, "三天治愈痘痘");
        assert_eq!(cosmetic[0].term, "治愈");
    }

    #[test]
    fn everyday_text_is_left_alone() {
        for text in [
            "最近天气变冷，注意保暖",
            "活动最后一天",
            "最初的梦想，最终的选择",
            "第一次下单立减10元",
            "这是我们第一次合作",
            "第一时间为您处理，第一步请填写地址",
            "最好提前预约，最好不要空腹饮用",
            "安全第一，质量第一",
            "开封后请在最佳赏味期内饮用",
            "唯一需要做的是扫码",
            "我们始终极力维护用户权益",
            "请确保本人签收",
            "和最好的朋友一起",
            "这个香味很治愈",
            "最新款已到货",
            "买了一套，现在就用上了",
            "打开光驱",
            "最好再读一遍",
            "第一本书看完了，第一页就很精彩",
            "把安全放在首位，服务第一",
        ] {
            let found = review(Kind::Ad, ProductCategory::Cosmetics, text);
            assert!(found.is_empty(), "{text}: {found:?}");
        }
    }

    #[test]
    fn traditional_full_width_and_separated_spellings_are_found() {
        for (text, term, matched) in [
            ("極品好茶", "极品", "極品"),
            ("國家級品質", "国家级", "國家級"),
            ("頂級工藝", "顶级", "頂級"),
            ("無副作用", "无副作用", "無副作用"),
            ("ＮＯ．１的选择", "NO.1", "ＮＯ．１"),
            ("全网No.1", "NO.1", "No.1"),
            ("人气top 1", "TOP1", "top 1"),
            ("效果最*好", "最好", "最*好"),
            ("行业第 一", "第一", "第 一"),
            ("年度最.佳", "最佳", "最.佳"),
            ("唯🔥一正品", "唯一", "唯🔥一"),
        ] {
            let found = review(Kind::Ad, ProductCategory::General, text);
            assert_eq!(found.len(), 1, "{text}: {found:?}");
            assert_eq!(
                (found[0].term.as_str(), found[0].matched.as_str()),
                (term, matched)
            );
        }
        assert_eq!(
            review(Kind::Ad, ProductCategory::Cosmetics, "三天治癒")[0].matched,
            "治癒"
        );
    }

    #[test]
    fn ascii_terms_are_whole_words() {
        assert!(terms("casino1 top10 no.12").is_empty());
    }

    #[test]
    fn positions_are_char_offsets_in_the_original() {
        let text = "👍新品上市！效果最 * 好，ＮＯ．１";
        let found = review(Kind::Ad, ProductCategory::General, text);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].start, found[0].end), (8, 13));
        assert_eq!((found[1].start, found[1].end), (14, 18));
        for finding in &found {
            let written: String = text
                .chars()
                .skip(finding.start)
                .take(finding.end - finding.start)
                .collect();
            assert_eq!(written, finding.matched);
        }
        assert_eq!(found[0].rule, FindingRule::Absolute);
        assert_eq!(found[0].article.as_deref(), Some("《广告法》第九条第三项"));
    }

    #[test]
    fn banned_words_fold_like_the_text() {
        let reviewer = Reviewer::new(&[
            "竞品A".to_owned(),
            "  ".to_owned(),
            "競品ａ".to_owned(),
            "Cheap".to_owned(),
        ]);
        let found = reviewer.review(
            Kind::Content,
            ProductCategory::General,
            "比競品Ａ更好，not CHEAP, cheaper",
        );
        let summary: Vec<_> = found
            .iter()
            .map(|f| {
                (
                    f.term.as_str(),
                    f.matched.as_str(),
                    f.rule,
                    f.article.is_none(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("竞品A", "競品Ａ", FindingRule::BannedWord, true),
                ("Cheap", "CHEAP", FindingRule::BannedWord, true),
            ]
        );
    }

    #[test]
    fn a_banned_word_does_not_hide_a_claim() {
        let reviewer = Reviewer::new(&["最好用".to_owned()]);
        let found = reviewer.review(Kind::Content, ProductCategory::General, "最好用的锅");
        let rules: Vec<_> = found.iter().map(|f| (f.rule, f.end)).collect();
        assert_eq!(
            rules,
            [(FindingRule::Absolute, 2), (FindingRule::BannedWord, 3)]
        );
    }

    #[test]
    fn an_exception_applies_only_where_it_covers_the_match() {
        let found = terms("第一次购买就选第一品牌");
        assert_eq!(found, ["第一"]);
        let found = review(Kind::Ad, ProductCategory::General, "第一次购买就选第一品牌");
        assert_eq!(found[0].start, 7);
    }

    #[test]
    fn medical_claims_depend_on_the_product_category() {
        let text = "温和消炎，降血压";
        for category in [ProductCategory::General, ProductCategory::Medical] {
            assert!(review(Kind::Ad, category, text).is_empty(), "{category}");
        }
        let cosmetics = review(Kind::Ad, ProductCategory::Cosmetics, text);
        assert_eq!(cosmetics.len(), 2);
        assert_eq!(cosmetics[0].rule, FindingRule::Medical);
        assert_eq!(
            cosmetics[0].article.as_deref(),
            Some("《广告法》第十七条；《化妆品监督管理条例》第三十七条")
        );
        let food = review(Kind::Content, ProductCategory::Food, text);
        assert_eq!(
            food[1].article.as_deref(),
            Some("《广告法》第十七条；《食品安全法》第七十三条")
        );
        assert!(
            review(Kind::Ad, ProductCategory::Food, "三高人群慎用").is_empty(),
            "a disease named without a claim"
        );
    }

    #[test]
    fn platform_sensitive_topics_apply_to_ads_only() {
        let text = "下载APP购买彩票";
        for kind in [Kind::Service, Kind::Content] {
            assert!(review(kind, ProductCategory::General, text).is_empty());
        }
        let found = review(Kind::Ad, ProductCategory::General, text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule, FindingRule::PlatformSensitive);
        assert_eq!(found[0].article, None);
    }

    #[test]
    fn of_overlapping_terms_the_longest_is_reported() {
        // 治愈率 (efficacy) and 治愈 (medical) both apply to a cosmetic.
        let found = review(Kind::Ad, ProductCategory::Cosmetics, "治愈率高达95%");
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].term.as_str(), found[0].rule),
            ("治愈率", FindingRule::Efficacy)
        );
    }

    #[test]
    fn findings_are_stored_as_json() {
        let found = review(Kind::Ad, ProductCategory::General, "最佳");
        let json = serde_json::to_string(&found[0]).unwrap();
        assert!(json.contains(r#""rule":"absolute""#), "{json}");
        assert_eq!(serde_json::from_str::<Finding>(&json).unwrap(), found[0]);
        assert_eq!(
            serde_json::to_string(&ProductCategory::Cosmetics).unwrap(),
            r#""cosmetics""#
        );
        for category in ProductCategory::ALL {
            assert_eq!(
                category.as_str().parse::<ProductCategory>().unwrap(),
                *category
            );
        }
        assert_eq!(
            FindingRule::PlatformSensitive.as_str(),
            "platform_sensitive"
        );
    }
}
