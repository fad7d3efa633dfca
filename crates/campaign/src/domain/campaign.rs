//! What a campaign is: its channel, the kind of message it sends, its lifecycle.

use serde::{Deserialize, Serialize};

/// Where a message goes. Delivering it is a connector's job; a send record names the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    DirectMessage,
    Push,
    Sms,
    Email,
    WechatTemplate,
    /// A platform-specific channel (a Douyin private letter card, a Xiaohongshu note mention …).
    Platform,
}

/// What a message is for. Pressure rules treat them differently: `service` messages (answers, order
/// notices) are exempt from caps unless a tenant says otherwise; `ad` counts against the
/// content-to-ad ratio and pauses in a crisis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Service,
    Content,
    Ad,
}

impl Kind {
    /// Content and ads are marketing; service messages are not.
    pub fn is_marketing(self) -> bool {
        !matches!(self, Kind::Service)
    }
}

/// draft → scheduled → running → paused → finished → archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Scheduled,
    Running,
    Paused,
    Finished,
    Archived,
}

/// `ALL`, `as_str`, `Display` and `FromStr` (failing with [`UnknownName`]) for an enum from its
/// variants and their names.
macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::domain::campaign::UnknownName;

            fn from_str(name: &str) -> Result<Self, Self::Err> {
                match name {
                    $($name => Ok($ty::$variant),)+
                    _ => Err($crate::domain::campaign::UnknownName {
                        what: stringify!($ty),
                        name: name.to_owned(),
                    }),
                }
            }
        }
    };
}
pub(crate) use names;

names!(Channel {
    DirectMessage => "direct_message",
    Push => "push",
    Sms => "sms",
    Email => "email",
    WechatTemplate => "wechat_template",
    Platform => "platform",
});

names!(Kind { Service => "service", Content => "content", Ad => "ad" });

names!(Status {
    Draft => "draft",
    Scheduled => "scheduled",
    Running => "running",
    Paused => "paused",
    Finished => "finished",
    Archived => "archived",
});

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>().unwrap(), *kind);
        }
        for channel in Channel::ALL {
            assert_eq!(channel.as_str().parse::<Channel>().unwrap(), *channel);
        }
        assert!("billboard".parse::<Channel>().is_err());
    }
}
