//! What a canonical event says: the text-bearing events (comments, mentions, direct messages, posts)
//! reduced to the fields monitoring needs. Everything else carries no text and is ignored.

use socialops_proto::events::v1::SocialEvent;
use socialops_proto::events::v1::social_event::Payload;

/// Who wrote a text and what it can be an answer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A user wrote it: it is scored, matched against watchlists and, for comments and direct
    /// messages, waits for a reply.
    User { awaits_reply: bool },
    /// The brand's own account wrote it: it may answer a user's message and is not scored.
    Brand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Comment,
    DirectMessage,
    Mention,
    Post,
}

/// A text-bearing event, flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextItem {
    pub tenant_id: String,
    pub event_id: String,
    pub user_id: String,
    pub platform: i32,
    pub occurred_at_us: i64,
    pub event_type: EventType,
    pub kind: Kind,
    /// The comment's or message's own id on the platform (the event id when it has none).
    pub message_id: String,
    /// The comment or message this one answers.
    pub reply_to_id: String,
    /// The direct-message conversation, or the post a comment is under.
    pub conversation_id: String,
    pub text: String,
    /// The name shown for the author: the mention's `author`, otherwise the user id.
    pub author: String,
    /// Followers or views the text can reach.
    pub reach: u64,
}

impl TextItem {
    /// The text-bearing part of `event`, or `None` for events without text.
    pub fn from_event(event: &SocialEvent) -> Option<Self> {
        let item = |event_type,
                    kind,
                    message_id: &str,
                    reply_to_id: &str,
                    conversation_id: &str,
                    text: &str| {
            Self {
                tenant_id: event.tenant_id.clone(),
                event_id: event.event_id.clone(),
                user_id: event.user_id.clone(),
                platform: event.platform,
                occurred_at_us: socialops_proto::micros_of(event.occurred_at.as_ref()).unwrap_or(0),
                event_type,
                kind,
                message_id: if message_id.is_empty() {
                    event.event_id.clone()
                } else {
                    message_id.to_owned()
                },
                reply_to_id: reply_to_id.to_owned(),
                conversation_id: conversation_id.to_owned(),
                text: text.to_owned(),
                author: event.user_id.clone(),
                reach: 0,
            }
        };
        let mut flattened = match event.payload.as_ref()? {
            Payload::Comment(c) => {
                let kind = if c.from_brand {
                    Kind::Brand
                } else {
                    Kind::User { awaits_reply: true }
                };
                let mut flat = item(
                    EventType::Comment,
                    kind,
                    &c.comment_id,
                    &c.reply_to_id,
                    &c.post_id,
                    &c.text,
                );
                flat.reach = c.author_follower_count;
                flat
            }
            Payload::DirectMessage(m) => {
                let kind = if m.from_brand {
                    Kind::Brand
                } else {
                    Kind::User { awaits_reply: true }
                };
                let mut flat = item(
                    EventType::DirectMessage,
                    kind,
                    &m.message_id,
                    &m.reply_to_id,
                    &m.conversation_id,
                    &m.text,
                );
                flat.reach = m.author_follower_count;
                flat
            }
            Payload::Mention(m) => {
                let mut flat = item(
                    EventType::Mention,
                    Kind::User {
                        awaits_reply: false,
                    },
                    &m.mention_id,
                    "",
                    "",
                    &m.text,
                );
                if !m.author.is_empty() {
                    flat.author = m.author.clone();
                }
                flat.reach = m.reach;
                flat
            }
            // The brand's own posts are what users react to, not a reaction.
            Payload::PostPublished(p) if !p.from_brand => item(
                EventType::Post,
                Kind::User {
                    awaits_reply: false,
                },
                &p.post_id,
                "",
                "",
                &p.text,
            ),
            _ => return None,
        };
        flattened.text = flattened.text.trim().to_owned();
        if flattened.text.is_empty() && flattened.kind != Kind::Brand {
            return None;
        }
        Some(flattened)
    }

    pub fn is_user(&self) -> bool {
        matches!(self.kind, Kind::User { .. })
    }

    pub fn awaits_reply(&self) -> bool {
        matches!(self.kind, Kind::User { awaits_reply: true })
    }
}

#[cfg(test)]
mod tests {
    use socialops_proto::Timestamp;
    use socialops_proto::events::v1::{
        Comment, DirectMessage, Like, Mention, Platform, PostPublished,
    };

    use super::*;

    fn event(payload: Payload) -> SocialEvent {
        SocialEvent {
            event_id: "e-1".into(),
            tenant_id: "acme".into(),
            platform: Platform::Weibo as i32,
            user_id: "u-1".into(),
            occurred_at: Some(Timestamp {
                seconds: 100,
                nanos: 5_000,
            }),
            payload: Some(payload),
            ..Default::default()
        }
    }

    #[test]
    fn comments_wait_for_a_reply_and_carry_follower_reach() {
        let item = TextItem::from_event(&event(Payload::Comment(Comment {
            comment_id: "c-1".into(),
            post_id: "p-1".into(),
            text: " 质量太差了 ".into(),
            author_follower_count: 1_200,
            ..Default::default()
        })))
        .unwrap();
        assert_eq!(item.kind, Kind::User { awaits_reply: true });
        assert_eq!(item.text, "质量太差了");
        assert_eq!(item.message_id, "c-1");
        assert_eq!(item.conversation_id, "p-1");
        assert_eq!(item.reach, 1_200);
        assert_eq!(item.author, "u-1");
        assert_eq!(item.occurred_at_us, 100_000_005);
    }

    #[test]
    fn mentions_use_their_author_and_reach_and_wait_for_nothing() {
        let item = TextItem::from_event(&event(Payload::Mention(Mention {
            mention_id: "m-1".into(),
            text: "漏液了".into(),
            author: "小鹿".into(),
            reach: 56_300,
            url: String::new(),
        })))
        .unwrap();
        assert_eq!(item.author, "小鹿");
        assert_eq!(item.reach, 56_300);
        assert!(!item.awaits_reply());
        assert!(item.is_user());
    }

    #[test]
    fn brand_messages_are_replies_even_without_text() {
        let item = TextItem::from_event(&event(Payload::DirectMessage(DirectMessage {
            message_id: "d-2".into(),
            conversation_id: "conv-1".into(),
            reply_to_id: "d-1".into(),
            from_brand: true,
            ..Default::default()
        })))
        .unwrap();
        assert_eq!(item.kind, Kind::Brand);
        assert_eq!(item.reply_to_id, "d-1");
        assert_eq!(item.conversation_id, "conv-1");
    }

    #[test]
    fn brand_posts_empty_texts_and_textless_events_are_ignored() {
        let brand_post = Payload::PostPublished(PostPublished {
            post_id: "p".into(),
            text: "新品上市".into(),
            url: String::new(),
            from_brand: true,
        });
        assert!(TextItem::from_event(&event(brand_post)).is_none());
        let user_post = Payload::PostPublished(PostPublished {
            post_id: "p".into(),
            text: "测评".into(),
            url: String::new(),
            from_brand: false,
        });
        assert!(TextItem::from_event(&event(user_post)).is_some());
        let blank = Payload::Comment(Comment {
            text: "   ".into(),
            ..Default::default()
        });
        assert!(TextItem::from_event(&event(blank)).is_none());
        let like = Payload::Like(Like {
            post_id: "p".into(),
        });
        assert!(TextItem::from_event(&event(like)).is_none());
    }
}
