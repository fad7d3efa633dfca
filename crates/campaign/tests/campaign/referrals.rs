//! Referral programmes through their real doors: invite codes over gRPC, `referral`, `identify`,
//! order and refund events on the broker, the ledger and flagged referrals read back.

use socialops_auth::Role;
use socialops_proto::campaign::v1::referral_service_client::ReferralServiceClient;
use socialops_proto::campaign::v1::{
    CouponPool, CreatePoolRequest, CreateProgrammeRequest, GetInviteCodeRequest,
    GetProgrammeRequest, ListFlaggedRequest, ListLedgerRequest, Programme,
};
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{
    Alias, AliasKind, Identify, OrderPlaced, OrderRefunded, Referral,
};
use tonic::Code;

use crate::support::*;

async fn referrals_for(
    app: &TestApp,
    tenant: &str,
) -> ReferralServiceClient<socialops_testkit::Authed> {
    ReferralServiceClient::new(
        app.channel(app.running().grpc_addr, tenant, Role::Writer)
            .await,
    )
}

async fn invite_code(app: &TestApp, user: &str) -> String {
    referrals_for(app, &app.tenant)
        .await
        .get_invite_code(GetInviteCodeRequest {
            programme_id: "friends".into(),
            user_id: user.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .code
}

async fn referred(app: &TestApp, invitee: &str, code: &str) {
    app.event(
        invitee,
        Payload::Referral(Referral {
            inviter_user_id: String::new(),
            invitee_user_id: invitee.into(),
            referral_code: code.into(),
        }),
    )
    .await;
}

async fn first_order(app: &TestApp, user: &str) {
    app.event(
        user,
        Payload::OrderPlaced(OrderPlaced {
            order_id: format!("first-{user}"),
            amount_cents: 15_900,
            currency: "CNY".into(),
            items: Vec::new(),
            coupon_code: String::new(),
        }),
    )
    .await;
}

async fn phone(app: &TestApp, user: &str, hash: &str) {
    app.event(
        user,
        Payload::Identify(Identify {
            aliases: vec![Alias {
                kind: AliasKind::Phone as i32,
                platform: 0,
                value: String::new(),
                value_hash: hash.into(),
            }],
        }),
    )
    .await;
}

async fn referrals_are_credited_rewarded_flagged_and_reversed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.coupons()
        .await
        .create_pool(CreatePoolRequest {
            pool: Some(CouponPool {
                id: "REWARD".into(),
                name: "Referral reward".into(),
                code_prefix: "FRIEND-".into(),
                value_cents: 2_000,
                currency: "CNY".into(),
                per_user_limit: 10,
                ..CouponPool::default()
            }),
        })
        .await
        .unwrap();
    let mut client = referrals_for(&app, &app.tenant).await;
    let created = client
        .create_programme(CreateProgrammeRequest {
            programme: Some(Programme {
                id: "friends".into(),
                name: "Bring a friend".into(),
                reward_pool_id: "REWARD".into(),
                ..Programme::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((created.reward_every, created.burst_limit), (3, 10));
    let code = invite_code(&app, "a").await;
    assert_eq!(invite_code(&app, "a").await, code, "one code per user");

    // x shares a's phone; z bought before being referred.
    phone(&app, "a", "h-phone-1").await;
    phone(&app, "x", "h-phone-1").await;
    first_order(&app, "z").await;
    app.settle().await;
    app.advance(MINUTE_US);
    for invitee in ["b1", "b2", "b3", "x", "y", "z"] {
        referred(&app, invitee, &code).await;
    }
    app.settle().await;
    // a was invited by b1, whom a invited: a cycle.
    let b1_code = invite_code(&app, "b1").await;
    referred(&app, "a", &b1_code).await;
    app.settle().await;
    for invitee in ["b1", "b2", "b3", "y"] {
        first_order(&app, invitee).await;
        app.settle().await;
    }
    // b2's first order comes back within the window.
    app.advance(DAY_US);
    app.event(
        "b2",
        Payload::OrderRefunded(OrderRefunded {
            order_id: "first-b2".into(),
            amount_cents: 15_900,
            currency: "CNY".into(),
            reason: "changed mind".into(),
        }),
    )
    .await;
    app.settle().await;

    let ledger = client
        .list_ledger(ListLedgerRequest {
            programme_id: "friends".into(),
            user_id: "a".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let kinds: Vec<(&str, &str)> = ledger
        .iter()
        .map(|e| (e.kind.as_str(), e.invitee_user_id.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("credit", "b1"),
            ("credit", "b2"),
            ("credit", "b3"),
            ("reward", "b3"),
            ("credit", "y"),
            ("reversal", "b2"),
        ]
    );
    let reward = &ledger[3];
    assert!(reward.coupon_code.starts_with("FRIEND-"), "{reward:?}");
    let reversal = &ledger[5];
    assert_eq!(
        reversal.reverses_seq, ledger[1].seq,
        "a reversal names the credit"
    );

    let flagged = client
        .list_flagged(ListFlaggedRequest {
            programme_id: "friends".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .referrals;
    let mut checks: Vec<(String, String)> = flagged
        .iter()
        .map(|f| (f.invitee_user_id.clone(), f.check.clone()))
        .collect();
    checks.sort();
    assert_eq!(
        checks,
        [
            ("a".to_owned(), "cycle".to_owned()),
            ("x".to_owned(), "shared_alias".to_owned()),
            ("z".to_owned(), "existing_customer".to_owned()),
        ]
    );
    assert!(flagged.iter().all(|f| !f.reason.is_empty()));

    let stats = client
        .get_programme(GetProgrammeRequest {
            programme_id: "friends".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    assert_eq!(
        (stats.inviters, stats.converted_invitees, stats.flagged),
        (1, 3, 3)
    );
    assert_eq!(
        (stats.rewards, stats.reward_cost_cents, stats.reversals),
        (1, 2_000, 1)
    );
    assert!((stats.fission_rate - 3.0).abs() < 1e-9);

    socialops_testkit::eventually("a's ledger on the campaigns topic", || {
        let kinds: Vec<String> = app
            .coupon_outcomes()
            .into_iter()
            .filter_map(|o| match o {
                socialops_proto::campaigns::v1::campaign_outcome::Outcome::Referral(r) => {
                    Some(r.kind)
                }
                _ => None,
            })
            .collect();
        async move {
            if kinds == ["credit", "credit", "credit", "reward", "credit", "reversal"] {
                Ok(())
            } else {
                Err(format!("{kinds:?}"))
            }
        }
    })
    .await;

    let err = referrals_for(&app, "someone-else")
        .await
        .get_programme(GetProgrammeRequest {
            programme_id: "friends".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn referrals_are_credited_rewarded_flagged_and_reversed_on_sqlite() {
    referrals_are_credited_rewarded_flagged_and_reversed(Backend::Sqlite).await;
}

#[tokio::test]
async fn referrals_are_credited_rewarded_flagged_and_reversed_on_postgres() {
    referrals_are_credited_rewarded_flagged_and_reversed(Backend::Postgres).await;
}
