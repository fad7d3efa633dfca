//! Coupons through the coupon API, events and a journey's coupon action: codes issued and
//! redeemed once, budgets held under concurrent clients on PostgreSQL, refunds restoring codes.

use std::collections::HashSet;
use std::sync::Arc;

use socialops_auth::Role;
use socialops_proto::campaign::v1::{
    CouponPool, CouponState, CreatePoolRequest, GetCouponRequest, GetPoolRequest,
    IssueCouponRequest, ListCouponsRequest, RedeemCouponRequest,
};
use socialops_proto::campaigns::v1::campaign_outcome::Outcome;
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{CouponRedeemed, OrderPlaced, OrderRefunded};
use tonic::Code;

use crate::support::*;

fn pool(id: &str) -> CouponPool {
    CouponPool {
        id: id.into(),
        name: format!("{id} pool"),
        code_prefix: "WB-".into(),
        value_cents: 1_000,
        currency: "CNY".into(),
        per_user_limit: 1,
        min_order_cents: 5_000,
        valid_for_seconds: 7 * 24 * 3_600,
        restore_window_seconds: 3 * 24 * 3_600,
        ..CouponPool::default()
    }
}

async fn create(app: &TestApp, pool: CouponPool) -> CouponPool {
    app.coupons()
        .await
        .create_pool(CreatePoolRequest { pool: Some(pool) })
        .await
        .unwrap()
        .into_inner()
}

async fn issue(
    client: &mut Coupons,
    pool_id: &str,
    user: &str,
    request_id: &str,
) -> Result<String, Code> {
    client
        .issue_coupon(IssueCouponRequest {
            pool_id: pool_id.into(),
            user_id: user.into(),
            request_id: request_id.into(),
        })
        .await
        .map(|r| r.into_inner().code)
        .map_err(|e| e.code())
}

fn redeem(code: &str, user: &str, order_id: &str, amount: i64) -> RedeemCouponRequest {
    RedeemCouponRequest {
        code: code.into(),
        user_id: user.into(),
        order_id: order_id.into(),
        order_amount_cents: amount,
    }
}

async fn coupon_state(client: &mut Coupons, code: &str) -> (CouponState, Vec<String>) {
    let coupon = client
        .get_coupon(GetCouponRequest { code: code.into() })
        .await
        .unwrap()
        .into_inner();
    (
        coupon.state(),
        coupon.history.into_iter().map(|e| e.kind).collect(),
    )
}

async fn issue_and_redeem(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut client = app.coupons().await;
    let created = create(&app, pool("WB10")).await;
    assert_eq!((created.num_issued, created.per_user_limit), (0, 1));
    let err = client
        .create_pool(CreatePoolRequest {
            pool: Some(pool("WB10")),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    // A retried issue returns the same code; a second code for the user is over the limit.
    let code = issue(&mut client, "WB10", "u1", "r1").await.unwrap();
    assert!(code.starts_with("WB-") && code.len() == 15, "{code}");
    assert_eq!(
        issue(&mut client, "WB10", "u1", "r1").await,
        Ok(code.clone())
    );
    assert_eq!(
        issue(&mut client, "WB10", "u1", "r2").await,
        Err(Code::ResourceExhausted)
    );
    assert_eq!(
        issue(&mut client, "NOPE", "u1", "r3").await,
        Err(Code::NotFound)
    );
    assert_eq!(
        issue(&mut client, "WB10", "u2", "r1").await,
        Err(Code::AlreadyExists),
        "a request id is one user's"
    );

    // Another user's attempt and a small order are refused and kept in the history.
    let err = client
        .redeem_coupon(redeem(&code, "u2", "o1", 9_900))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("another user"), "{}", err.message());
    let err = client
        .redeem_coupon(redeem(&code, "u1", "o1", 4_900))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("minimum of 50.00"),
        "{}",
        err.message()
    );

    let done = client
        .redeem_coupon(redeem(&code, "u1", "o1", 9_900))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((done.discount_cents, done.replayed), (1_000, false));
    let again = client
        .redeem_coupon(redeem(&code, "u1", "o1", 9_900))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.discount_cents, again.replayed), (1_000, true));
    let err = client
        .redeem_coupon(redeem(&code, "u1", "o2", 9_900))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = client
        .redeem_coupon(redeem("WB-NOSUCHCODE0", "u1", "o3", 9_900))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let (state, history) = coupon_state(&mut client, &code).await;
    assert_eq!(state, CouponState::Redeemed);
    assert_eq!(
        history,
        ["issued", "refused", "refused", "redeemed", "refused"]
    );
    let pool = client
        .get_pool(GetPoolRequest {
            pool_id: "WB10".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            pool.num_issued,
            pool.num_redeemed,
            pool.redeemed_value_cents
        ),
        (1, 1, 1_000)
    );
    let listed = client
        .list_coupons(ListCouponsRequest {
            user_id: "u1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .coupons;
    assert_eq!(listed.len(), 1);

    // The codes reach the campaigns topic: issued, then redeemed.
    eventually_outcomes(&app, 2).await;
    let outcomes = app.coupon_outcomes();
    assert!(
        matches!(&outcomes[0], Outcome::CouponIssued(i) if i.code == code && i.pool_id == "WB10")
    );
    assert!(
        matches!(&outcomes[1], Outcome::CouponRedeemed(r) if r.code == code && r.order_id == "o1" && r.discount_cents == 1_000)
    );

    // Another tenant sees none of it and cannot redeem it.
    let mut other = app.coupons_for("someone-else", Role::Admin).await;
    for code_seen in [
        other
            .get_pool(GetPoolRequest {
                pool_id: "WB10".into(),
            })
            .await
            .map(|_| ()),
        other
            .get_coupon(GetCouponRequest { code: code.clone() })
            .await
            .map(|_| ()),
        other
            .redeem_coupon(redeem(&code, "u1", "o9", 9_900))
            .await
            .map(|_| ()),
    ] {
        assert_eq!(code_seen.unwrap_err().code(), Code::NotFound);
    }
    assert_eq!(
        issue(&mut other, "WB10", "u1", "x").await,
        Err(Code::NotFound)
    );
    let mut reader = app.coupons_for(&app.tenant, Role::Reader).await;
    assert_eq!(
        issue(&mut reader, "WB10", "u9", "x").await,
        Err(Code::PermissionDenied)
    );
}

async fn eventually_outcomes(app: &TestApp, count: usize) {
    socialops_testkit::eventually(&format!("{count} coupon outcomes"), || {
        let found = app.coupon_outcomes();
        async move {
            if found.len() >= count {
                Ok(())
            } else {
                Err(format!("{found:#?}"))
            }
        }
    })
    .await;
}

#[tokio::test]
async fn issue_and_redeem_on_sqlite() {
    issue_and_redeem(Backend::Sqlite).await;
}

#[tokio::test]
async fn issue_and_redeem_on_postgres() {
    issue_and_redeem(Backend::Postgres).await;
}

/// Orders carrying a code and `coupon_redeemed` events redeem codes; a whole refund within the
/// window restores one; an expired code is refused.
async fn redeemed_by_events(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut client = app.coupons().await;
    create(&app, pool("WB10")).await;
    let first = issue(&mut client, "WB10", "u1", "a").await.unwrap();
    let second = issue(&mut client, "WB10", "u2", "b").await.unwrap();
    let late = issue(&mut client, "WB10", "u3", "c").await.unwrap();
    app.event(
        "u1",
        Payload::OrderPlaced(OrderPlaced {
            order_id: "o1".into(),
            amount_cents: 12_900,
            currency: "CNY".into(),
            items: Vec::new(),
            coupon_code: first.clone(),
        }),
    )
    .await;
    app.event(
        "u2",
        Payload::CouponRedeemed(CouponRedeemed {
            coupon_code: second.clone(),
            order_id: "o2".into(),
            discount_cents: 800,
            currency: "CNY".into(),
        }),
    )
    .await;
    app.settle().await;
    assert_eq!(
        coupon_state(&mut client, &first).await.0,
        CouponState::Redeemed
    );
    let redeemed = client
        .get_coupon(GetCouponRequest {
            code: second.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (redeemed.state(), redeemed.discount_cents),
        (CouponState::Redeemed, 800)
    );

    // A whole refund a day later restores the first code; it can be used again.
    app.advance(DAY_US);
    app.event(
        "u1",
        Payload::OrderRefunded(OrderRefunded {
            order_id: "o1".into(),
            amount_cents: 12_900,
            currency: "CNY".into(),
            reason: "damaged".into(),
        }),
    )
    .await;
    app.settle().await;
    let (state, history) = coupon_state(&mut client, &first).await;
    assert_eq!(state, CouponState::Issued);
    assert_eq!(history, ["issued", "redeemed", "restored"]);
    let pool_now = client
        .get_pool(GetPoolRequest {
            pool_id: "WB10".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (pool_now.num_redeemed, pool_now.redeemed_value_cents),
        (1, 800)
    );

    // Eight days after issue the third code has expired.
    app.advance(7 * DAY_US);
    app.event(
        "u3",
        Payload::OrderPlaced(OrderPlaced {
            order_id: "o3".into(),
            amount_cents: 12_900,
            currency: "CNY".into(),
            items: Vec::new(),
            coupon_code: late.clone(),
        }),
    )
    .await;
    app.settle().await;
    let (state, history) = coupon_state(&mut client, &late).await;
    assert_eq!(state, CouponState::Expired);
    assert_eq!(history, ["issued", "refused"]);
}

#[tokio::test]
async fn redeemed_by_events_on_sqlite() {
    redeemed_by_events(Backend::Sqlite).await;
}

#[tokio::test]
async fn redeemed_by_events_on_postgres() {
    redeemed_by_events(Backend::Postgres).await;
}

const WELCOME: &str = r#"
name = "Welcome coupon"
channel = "direct_message"
kind = "content"
entry = { type = "segment_entered", segment_id = "new" }

[[variants]]
id = "a"

[[steps]]
type = "send"
id = "coupon"
text = "欢迎！这是你的新人券。"
action = { type = "coupon", template = "WELCOME" }
"#;

/// A send step's coupon action issues a code into the message, one per send; once the pool's count
/// budget is spent, the send is dropped by the `coupon` rule rather than promising a code.
#[tokio::test]
async fn a_journey_step_issues_codes_until_the_budget_is_spent() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    create(
        &app,
        CouponPool {
            max_issued: 2,
            ..pool("WELCOME")
        },
    )
    .await;
    app.launch(WELCOME).await;
    for user in ["u1", "u2", "u3"] {
        app.entered_segment(user, "new").await;
    }
    app.settle().await;
    let sends = app.wait_sends("two coupon sends", 2, |_| true).await;
    let codes: HashSet<String> = sends.iter().map(|s| s.coupon_code.clone()).collect();
    assert_eq!(codes.len(), 2, "{sends:#?}");
    assert!(codes.iter().all(|c| c.starts_with("WB-")), "{codes:?}");
    let mut client = app.coupons().await;
    for send in &sends {
        let coupon = client
            .get_coupon(GetCouponRequest {
                code: send.coupon_code.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(coupon.user_id, user_of(send));
        assert_eq!(coupon.campaign_id, send.campaign_id);
    }
    app.settle().await;
    assert_eq!(app.published().len(), 2);
    let explained = app
        .writer()
        .await
        .explain_delivery(socialops_proto::campaign::v1::ExplainDeliveryRequest {
            campaign_id: sends[0].campaign_id.clone(),
            user_id: ["u1", "u2", "u3"]
                .into_iter()
                .find(|u| !sends.iter().any(|s| user_of(s) == *u))
                .unwrap()
                .into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        explained.summary.contains("dropped by coupon")
            && explained.summary.contains("count budget"),
        "{}",
        explained.summary
    );
}

/// One code redeemed by 50 clients at once: exactly one succeeds, the rest are told it is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_code_redeemed_by_fifty_at_once_on_postgres() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    create(&app, pool("WB10")).await;
    let mut client = app.coupons().await;
    let code = issue(&mut client, "WB10", "u1", "r").await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let mut client = app.coupons().await;
        let code = code.clone();
        tasks.spawn(async move {
            client
                .redeem_coupon(redeem(&code, "u1", &format!("o{i}"), 9_900))
                .await
                .map(|_| ())
                .map_err(|e| e.code())
        });
    }
    let results = tasks.join_all().await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(Code::FailedPrecondition))),
        "{results:?}"
    );
    let pool = client
        .get_pool(GetPoolRequest {
            pool_id: "WB10".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((pool.num_redeemed, pool.redeemed_value_cents), (1, 1_000));
}

/// 1,000 concurrent issues against a count budget of 100: exactly 100 codes, all different.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_issues_get_exactly_the_budget_on_postgres() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    create(
        &app,
        CouponPool {
            max_issued: 100,
            ..pool("WB10")
        },
    )
    .await;
    let clients: Vec<Coupons> = {
        let mut clients = Vec::new();
        for _ in 0..20 {
            clients.push(app.coupons().await);
        }
        clients
    };
    let clients = Arc::new(clients);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1_000 {
        let mut client = clients[i % clients.len()].clone();
        tasks.spawn(
            async move { issue(&mut client, "WB10", &format!("u{i}"), &format!("r{i}")).await },
        );
    }
    let results = tasks.join_all().await;
    let codes: HashSet<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(codes.len(), 100);
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == Err(Code::ResourceExhausted))
            .count(),
        900
    );
    let pool = app
        .coupons()
        .await
        .get_pool(GetPoolRequest {
            pool_id: "WB10".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pool.num_issued, 100);
}

/// Twenty codes worth 10.00 each redeemed at once against a value budget of 50.00: five succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redemptions_hold_the_value_budget_on_postgres() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    create(
        &app,
        CouponPool {
            value_budget_cents: 5_000,
            ..pool("WB10")
        },
    )
    .await;
    let mut client = app.coupons().await;
    let mut codes = Vec::new();
    for i in 0..20 {
        codes.push(
            issue(&mut client, "WB10", &format!("u{i}"), &format!("r{i}"))
                .await
                .unwrap(),
        );
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, code) in codes.into_iter().enumerate() {
        let mut client = app.coupons().await;
        tasks.spawn(async move {
            client
                .redeem_coupon(redeem(&code, &format!("u{i}"), &format!("o{i}"), 9_900))
                .await
                .map(|_| ())
                .map_err(|e| e.code())
        });
    }
    let results = tasks.join_all().await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        5,
        "{results:?}"
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == Err(Code::ResourceExhausted))
            .count(),
        15
    );
    let pool = client
        .get_pool(GetPoolRequest {
            pool_id: "WB10".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((pool.num_redeemed, pool.redeemed_value_cents), (5, 5_000));
}
