//! The socialops wire contract, compiled from `proto/` at build time.
//!
//! Every message also has a serde form following the proto3 JSON mapping (field names as in the proto
//! file, enums by name, timestamps as RFC 3339), which is what external producers send as JSON.

pub mod events {
    pub mod v1 {
        tonic::include_proto!("socialops.events.v1");
        include!(concat!(env!("OUT_DIR"), "/socialops.events.v1.serde.rs"));
    }
}

pub mod privacy {
    pub mod v1 {
        tonic::include_proto!("socialops.privacy.v1");
        include!(concat!(env!("OUT_DIR"), "/socialops.privacy.v1.serde.rs"));
    }
}

pub mod ingestion {
    pub mod v1 {
        tonic::include_proto!("socialops.ingestion.v1");
        include!(concat!(env!("OUT_DIR"), "/socialops.ingestion.v1.serde.rs"));
    }
}

pub mod alerts {
    pub mod v1 {
        tonic::include_proto!("socialops.alerts.v1");
        include!(concat!(env!("OUT_DIR"), "/socialops.alerts.v1.serde.rs"));
    }
}

pub mod sentiment {
    pub mod v1 {
        tonic::include_proto!("socialops.sentiment.v1");
        include!(concat!(env!("OUT_DIR"), "/socialops.sentiment.v1.serde.rs"));
    }
}

pub mod campaigns {
    pub mod v1 {
        tonic::include_proto!("socialops.campaigns.v1");
        include!(concat!(env!("OUT_DIR"), "/socialops.campaigns.v1.serde.rs"));
    }
}

pub mod campaign {
    pub mod v1 {
        tonic::include_proto!("socialops.campaign.v1");
        include!(concat!(env!("OUT_DIR"), "/socialops.campaign.v1.serde.rs"));
    }
}

pub mod profiles {
    pub mod v1 {
        tonic::include_proto!("socialops.profiles.v1");
        include!(concat!(env!("OUT_DIR"), "/socialops.profiles.v1.serde.rs"));
    }
}

pub mod segmentation {
    pub mod v1 {
        tonic::include_proto!("socialops.segmentation.v1");
        include!(concat!(
            env!("OUT_DIR"),
            "/socialops.segmentation.v1.serde.rs"
        ));
    }
}

/// The encoded `FileDescriptorSet` of every socialops proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("socialops_descriptor");

pub use pbjson_types::Timestamp;

/// The timestamp `us` microseconds after the Unix epoch (negative is before it).
pub fn timestamp(us: i64) -> Timestamp {
    Timestamp {
        seconds: us.div_euclid(1_000_000),
        // rem_euclid keeps nanos in 0..1e9 as the proto requires, also before the epoch.
        nanos: i32::try_from(us.rem_euclid(1_000_000) * 1_000).expect("below one second"),
    }
}

/// Microseconds since the Unix epoch of `at`, saturating at the ends of `i64`.
pub fn micros(at: &Timestamp) -> i64 {
    at.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(at.nanos / 1_000))
}

/// [`micros`] of a timestamp field, `None` when it is unset.
pub fn micros_of(at: Option<&Timestamp>) -> Option<i64> {
    at.map(micros)
}

impl privacy::v1::ErasureRequest {
    /// Decodes a `socialops.privacy.v1` message and checks that it names a tenant and a user; the
    /// error is the reason a consumer dead-letters it with.
    pub fn decode_required(payload: &[u8]) -> Result<Self, String> {
        match <Self as prost::Message>::decode(payload) {
            Ok(request) if !request.tenant_id.is_empty() && !request.user_id.is_empty() => {
                Ok(request)
            }
            Ok(_) => Err("tenant_id and user_id are required".into()),
            Err(e) => Err(format!("not an ErasureRequest: {e}")),
        }
    }
}

impl events::v1::social_event::Payload {
    /// The event type's name as it appears in the proto and JSON form, e.g. `order_placed`.
    pub fn type_name(&self) -> &'static str {
        use events::v1::social_event::Payload::*;
        match self {
            PostPublished(_) => "post_published",
            Comment(_) => "comment",
            Mention(_) => "mention",
            Like(_) => "like",
            Share(_) => "share",
            Follow(_) => "follow",
            Unfollow(_) => "unfollow",
            DirectMessage(_) => "direct_message",
            ContentImpression(_) => "content_impression",
            ContentClick(_) => "content_click",
            OrderPlaced(_) => "order_placed",
            OrderRefunded(_) => "order_refunded",
            CouponRedeemed(_) => "coupon_redeemed",
            Referral(_) => "referral",
            Identify(_) => "identify",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::events::v1::{SocialEvent, social_event::Payload};
    use super::*;

    #[test]
    fn json_form_round_trips_with_snake_case_names() {
        let json = r#"{
            "event_id": "e-1", "tenant_id": "acme", "platform": "PLATFORM_WEIBO", "user_id": "u-1",
            "occurred_at": "2026-11-01T08:00:00Z",
            "comment": {"comment_id": "c-1", "post_id": "p-1", "text": "很好用", "author_follower_count": 12}
        }"#;
        let event: SocialEvent = serde_json::from_str(json).unwrap();
        assert_eq!(event.occurred_at.unwrap().seconds, 1_793_520_000);
        let Some(Payload::Comment(comment)) = &event.payload else {
            panic!("expected a comment, got {:?}", event.payload);
        };
        assert_eq!(comment.text, "很好用");
        let back: SocialEvent =
            serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn json_form_rejects_unknown_fields() {
        let json = r#"{"event_id": "e-1", "commnet": {}}"#;
        let err = serde_json::from_str::<SocialEvent>(json).unwrap_err();
        assert!(err.to_string().contains("commnet"), "{err}");
    }

    #[test]
    fn timestamps_split_micros_into_seconds_and_nanos_both_sides_of_the_epoch() {
        let t = timestamp(1_500_000_250);
        assert_eq!((t.seconds, t.nanos), (1_500, 250_000));
        assert_eq!(micros(&t), 1_500_000_250);
        let before = timestamp(-1);
        assert_eq!((before.seconds, before.nanos), (-1, 999_999_000));
        assert_eq!(micros(&before), -1);
        let far = Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert_eq!(micros(&far), i64::MAX);
        assert_eq!(micros_of(None), None);
    }
}
