//! The store's contract, one suite over both backends: processed-event deduplication, timeline and
//! bucket counting, one open crisis per watchlist, numbered steps, reminders sent once, severity that
//! only rises, reply matching in either order, and erasure.

use std::collections::BTreeMap;

use socialops_scorer::Label;
use socialops_sentiment::domain::crisis::{CrisisState, ResponseClock};
use socialops_sentiment::domain::severity::Severity;
use socialops_sentiment::domain::watch::Terms;
use socialops_sentiment::store::crises::{self, Crisis, Step};
use socialops_sentiment::store::mentions::{self, Mention};
use socialops_sentiment::store::replies::{self, BrandMessage, UserMessage};
use socialops_sentiment::store::watchlists::{self, Watchlist};
use socialops_sentiment::store::{self, LabelCounts, SentimentStore};
use socialops_sentiment::{SentimentError, store::HOUR_US};
use socialops_storage::Db;
use socialops_storage::processed::mark_processed;

use crate::support::Backend;

async fn open(backend: Backend) -> Option<(SentimentStore, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let config = socialops_testkit::database(backend, dir.path(), "sentiment_store").await?;
    let db = Db::connect(&config).await.unwrap();
    Some((SentimentStore::open(db).await.unwrap(), dir))
}

fn crisis(id: &str, watchlist: &str) -> Crisis {
    Crisis {
        tenant_id: "acme".into(),
        crisis_id: id.into(),
        watchlist_id: watchlist.into(),
        watchlist_name: "精华".into(),
        state: CrisisState::Detected,
        severity: Severity::Low,
        reason: "spike".into(),
        window_start_us: 0,
        clock: ResponseClock {
            detected_at_us: 0,
            respond_by_us: 24 * HOUR_US,
            half_time_reminded: false,
            breached: false,
        },
        num_mentions: 0,
        num_negative: 0,
        total_reach: 0,
        num_steps: 0,
        updated_at_us: 0,
    }
}

fn step(kind: i32) -> Step {
    Step {
        seq: 0,
        kind,
        state: CrisisState::Detected,
        severity: Severity::Low,
        actor: String::new(),
        note: String::new(),
        at_us: 1,
    }
}

fn user(id: &str, conversation: &str, is_dm: bool, at_us: i64) -> UserMessage {
    UserMessage {
        tenant_id: "acme".into(),
        platform: 1,
        message_id: id.into(),
        event_id: format!("e-{id}"),
        user_id: format!("u-{id}"),
        is_dm,
        conversation_id: conversation.into(),
        text: "在吗".into(),
        polarity: -0.5,
        label: Label::Negative,
        reach: 3,
        occurred_at_us: at_us,
        answered_at_us: None,
    }
}

fn brand(id: &str, reply_to: &str, conversation: &str, is_dm: bool, at_us: i64) -> BrandMessage {
    BrandMessage {
        tenant_id: "acme".into(),
        platform: 1,
        message_id: id.into(),
        is_dm,
        reply_to_id: reply_to.into(),
        conversation_id: conversation.into(),
        occurred_at_us: at_us,
    }
}

async fn store_contract(backend: Backend) {
    let Some((store, _dir)) = open(backend).await else {
        return;
    };
    let mut conn = store.conn().await.unwrap();

    // Processed events: new once, whatever the repeats.
    let new = mark_processed(
        &mut conn,
        &[("acme", "e1"), ("acme", "e2"), ("acme", "e1")],
        1_000,
    )
    .await
    .unwrap();
    assert_eq!(new.len(), 2);
    let new = mark_processed(&mut conn, &[("acme", "e2"), ("beta", "e2")], 2_000)
        .await
        .unwrap();
    assert_eq!(
        new.into_iter().collect::<Vec<_>>(),
        [("beta".to_owned(), "e2".to_owned())]
    );
    assert_eq!(store::processed_count(&mut conn, "acme").await.unwrap(), 2);

    // Timeline counts add up.
    let mut counts = LabelCounts::default();
    counts.add(Label::Negative);
    counts.add(Label::Positive);
    let batch = BTreeMap::from([(("acme".to_owned(), HOUR_US), counts)]);
    store::add_to_timeline(&mut conn, &batch).await.unwrap();
    store::add_to_timeline(&mut conn, &batch).await.unwrap();
    let hours = store::timeline(&mut conn, "acme", 0, 2 * HOUR_US)
        .await
        .unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!((hours[0].1.negative, hours[0].1.positive), (2, 2));

    // Watchlists: names are unique per tenant.
    let watchlist = Watchlist {
        tenant_id: "acme".into(),
        watchlist_id: "w1".into(),
        name: "精华".into(),
        terms: Terms {
            brands: vec!["花知晓".into()],
            products: vec![],
            risk_words: vec!["投诉".into()],
        },
        created_at_us: 1,
        updated_at_us: 1,
    };
    watchlists::insert(&mut conn, &watchlist).await.unwrap();
    let duplicate = Watchlist {
        watchlist_id: "w2".into(),
        ..watchlist.clone()
    };
    assert!(matches!(
        watchlists::insert(&mut conn, &duplicate).await,
        Err(SentimentError::AlreadyExists(_))
    ));
    let other_tenant = Watchlist {
        tenant_id: "beta".into(),
        ..duplicate.clone()
    };
    watchlists::insert(&mut conn, &other_tenant).await.unwrap();
    assert_eq!(
        watchlists::get(&mut conn, "acme", "w1").await.unwrap(),
        Some(watchlist.clone())
    );

    // Mentions, buckets and the crisis they attach to.
    let mention = |event: &str, label: Label, at_us: i64| Mention {
        tenant_id: "acme".into(),
        watchlist_id: "w1".into(),
        event_id: event.into(),
        user_id: format!("u-{event}"),
        platform: 2,
        author: "a".into(),
        text: "投诉".into(),
        polarity: -0.4,
        label,
        confidence: 0.7,
        reach: 10,
        risk: true,
        occurred_at_us: at_us,
    };
    let stored = [
        mention("m1", Label::Negative, 100),
        mention("m2", Label::Positive, 200),
        mention("m3", Label::Negative, 5),
    ];
    mentions::insert(&mut conn, &stored).await.unwrap();
    mentions::insert(&mut conn, &stored[..1]).await.unwrap();
    let mut bucket = LabelCounts::default();
    bucket.add(Label::Negative);
    let buckets = BTreeMap::from([
        (("acme".to_owned(), "w1".to_owned(), 600), bucket),
        (("acme".to_owned(), "w1".to_owned(), 300), bucket),
    ]);
    mentions::add_to_buckets(&mut conn, &buckets).await.unwrap();
    mentions::add_to_buckets(&mut conn, &buckets).await.unwrap();
    let state = mentions::watch_state(&mut conn, "acme", "w1")
        .await
        .unwrap();
    assert_eq!(state.first_bucket_us, Some(300));
    let read = mentions::bucket_counts(&mut conn, "acme", "w1", &[300, 600, 900])
        .await
        .unwrap();
    assert_eq!(read[&600].negative, 2);
    assert!(!read.contains_key(&900));

    crises::insert(&mut conn, &crisis("c1", "w1"))
        .await
        .unwrap();
    let error = crises::insert(&mut conn, &crisis("c2", "w1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SentimentError::Database(sqlx::Error::Database(db)) if db.is_unique_violation()),
        "one open crisis per watchlist: {error:?}"
    );
    let totals = mentions::attach_to_crisis(&mut conn, "acme", "w1", 50, "c1")
        .await
        .unwrap();
    assert_eq!((totals.mentions, totals.negative, totals.reach), (2, 1, 20));
    let again = mentions::attach_to_crisis(&mut conn, "acme", "w1", 50, "c1")
        .await
        .unwrap();
    assert_eq!(again.mentions, 0, "a mention attaches once");
    let top = mentions::top_mentions(&mut conn, "acme", "c1", 10)
        .await
        .unwrap();
    assert_eq!(top.len(), 2);

    let open = crises::open_for(&mut conn, "acme", "w1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        crises::add_step(&mut conn, "acme", "c1", &step(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        crises::add_step(&mut conn, "acme", "c1", &step(2))
            .await
            .unwrap(),
        2
    );
    assert!(
        crises::raise_severity(&mut conn, &open, Severity::High, 5)
            .await
            .unwrap()
    );
    assert!(
        !crises::raise_severity(&mut conn, &open, Severity::Medium, 6)
            .await
            .unwrap()
    );
    assert!(
        crises::mark_reminded(&mut conn, &open, false, 7)
            .await
            .unwrap()
    );
    assert!(
        !crises::mark_reminded(&mut conn, &open, false, 8)
            .await
            .unwrap()
    );
    let due = crises::due_for_reminder(&mut conn, 12 * HOUR_US, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert!(
        crises::set_state(
            &mut conn,
            &open,
            CrisisState::Detected,
            CrisisState::Resolved,
            9
        )
        .await
        .unwrap()
    );
    assert!(
        !crises::set_state(
            &mut conn,
            &open,
            CrisisState::Detected,
            CrisisState::Acknowledged,
            9
        )
        .await
        .unwrap()
    );
    assert!(
        crises::due_for_reminder(&mut conn, 48 * HOUR_US, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let closed = crises::get(&mut conn, "acme", "c1").await.unwrap().unwrap();
    assert_eq!(
        (closed.state, closed.severity, closed.num_steps),
        (CrisisState::Resolved, Severity::High, 2)
    );
    crises::insert(&mut conn, &crisis("c2", "w1"))
        .await
        .unwrap();
    assert_eq!(
        crises::list(&mut conn, "acme", true, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        crises::list(&mut conn, "acme", false, Some("w1"), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        crises::steps(&mut conn, "acme", "c1").await.unwrap().len(),
        2
    );

    // Replies, in either order; the earliest answer wins.
    replies::apply_brand_message(&mut conn, &brand("b1", "q1", "", false, 1_500))
        .await
        .unwrap();
    let mut waiting = vec![
        user("q1", "post", false, 1_000),
        user("q2", "conv", true, 1_000),
        user("q3", "conv", true, 3_000),
    ];
    replies::insert_user_messages(&mut conn, &mut waiting)
        .await
        .unwrap();
    assert_eq!(waiting[0].answered_at_us, Some(1_500));
    assert_eq!(
        replies::apply_brand_message(&mut conn, &brand("b2", "", "conv", true, 2_000))
            .await
            .unwrap(),
        1,
        "a conversation reply answers what was written before it"
    );
    replies::apply_brand_message(&mut conn, &brand("b0", "q1", "", false, 1_200))
        .await
        .unwrap();
    let left = replies::unanswered(&mut conn, "acme", i64::MAX, 10)
        .await
        .unwrap();
    assert_eq!(
        left.iter()
            .map(|m| m.message_id.as_str())
            .collect::<Vec<_>>(),
        ["q3"]
    );
    let times = replies::reply_times(&mut conn, "acme", 0, i64::MAX)
        .await
        .unwrap();
    let mut seconds = times[&1].clone();
    seconds.sort_by(f64::total_cmp);
    assert_eq!(
        seconds,
        [0.0002, 0.001],
        "q1 answered by the earlier reply, q2 by the conversation"
    );

    // Erasure removes the user's mentions and messages.
    assert_eq!(
        store::erase_user(&mut conn, "acme", "u-m1").await.unwrap(),
        1
    );
    assert_eq!(
        store::erase_user(&mut conn, "acme", "u-q3").await.unwrap(),
        1
    );
    assert_eq!(
        mentions::count_for_tenant(&mut conn, "acme").await.unwrap(),
        2
    );
    assert!(
        replies::unanswered(&mut conn, "acme", i64::MAX, 10)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(watchlists::delete(&mut conn, "acme", "w1").await.unwrap());
    assert!(!watchlists::delete(&mut conn, "acme", "w1").await.unwrap());
    assert_eq!(
        mentions::watch_state(&mut conn, "acme", "w1")
            .await
            .unwrap()
            .first_bucket_us,
        None
    );
}

#[tokio::test]
async fn store_contract_on_sqlite() {
    store_contract(Backend::Sqlite).await;
}

#[tokio::test]
async fn store_contract_on_postgres() {
    store_contract(Backend::Postgres).await;
}
