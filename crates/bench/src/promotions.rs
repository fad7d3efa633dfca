//! `socialops bench promotions`: against one PostgreSQL server (and a broker for the service's
//! topics), in one run,
//!
//! 1. the raw baselines: `clients` concurrent connections committing single-statement `UPDATE`
//!    transactions, once on a row each and once all on one row (the shape of a pool's budget);
//! 2. coupon redemption: `codes` codes of one pool whose value budget covers `budget_codes` of them,
//!    redeemed over gRPC by `clients` concurrent clients; the rate, its ratios to the baselines, and
//!    a check that exactly `budget_codes` redemptions succeeded and the budget is spent to the cent;
//! 3. the campaign report: a campaign of `report_users` users (a tenth held out, the rest sent to,
//!    about one in ten converted) seeded in SQL, `GetCampaignReport` over gRPC timed (best of three),
//!    against one raw `COUNT(*)` over the campaign's sends;
//! 4. attribution: with the service stopped, `attribution_events` orders and clicks of those users
//!    (half each, a click naming the user's send) are produced onto the events topic; a plain
//!    consumer reads them (the raw consume baseline); the service starts on that backlog and the
//!    rate runs from its first handled batch to the last.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use secrecy::ExposeSecret;
use socialops_auth::{BearerToken, Role, TokenStore};
use socialops_bus::KafkaConfig;
use socialops_campaign::domain::definition::{Facts, Format, parse};
use socialops_campaign::domain::journey::JourneyState;
use socialops_campaign::manage::Change;
use socialops_campaign::{CampaignConfig, Dependencies};
use socialops_proto::campaign::v1::campaign_service_client::CampaignServiceClient;
use socialops_proto::campaign::v1::coupon_service_client::CouponServiceClient;
use socialops_proto::campaign::v1::{
    CouponPool, CreatePoolRequest, GetCampaignReportRequest, GetPoolRequest, RedeemCouponRequest,
};
use socialops_storage::{DatabaseConfig, Db};
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

#[derive(Debug, Args)]
pub struct PromotionsArgs {
    /// A Kafka-protocol broker (the service's topics; nothing is measured on it).
    #[arg(long, env = "SOCIALOPS_TEST_KAFKA")]
    pub kafka: String,
    /// A PostgreSQL server to create a scratch database on.
    #[arg(long, env = "SOCIALOPS_TEST_DATABASE_URL")]
    pub database_url: String,
    /// Concurrent clients (and connections of the raw baselines).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Codes redeemed.
    #[arg(long, default_value_t = 20_000)]
    pub codes: usize,
    /// Codes the pool's value budget covers.
    #[arg(long, default_value_t = 15_000)]
    pub budget_codes: usize,
    /// Users of the reported campaign (0 skips the report and attribution).
    #[arg(long, default_value_t = 1_000_000)]
    pub report_users: usize,
    /// Orders and clicks for the attribution rate (0 skips it).
    #[arg(long, default_value_t = 40_000)]
    pub attribution_events: usize,
}

const TENANT: &str = "bench-promotions";
const POOL: &str = "BENCH";
const VALUE_CENTS: i64 = 1_000;

const DEFINITION: &str = r#"
name = "Bench report"
channel = "direct_message"
kind = "content"
holdout = 0.1
entry = { type = "segment_entered", segment_id = "bench" }

[[variants]]
id = "a"

[[variants]]
id = "b"

[[steps]]
type = "send"
id = "s1"
text = "春季上新。"
"#;

type Authed = InterceptedService<Channel, BearerToken>;

async fn channel(
    addr: std::net::SocketAddr,
    tokens: &TokenStore,
) -> anyhow::Result<(Channel, BearerToken)> {
    let token = tokens.issue(TENANT, Role::Writer);
    let channel = socialops_grpc::connect(&format!("http://{addr}")).await?;
    Ok((channel, BearerToken::new(token.token.expose_secret())?))
}

pub async fn run(args: PromotionsArgs) -> anyhow::Result<()> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let kafka = KafkaConfig::new(args.kafka.clone());
    let topics = crate::campaign::campaign_topics(&kafka, &run_id, 3).await?;
    let database = DatabaseConfig {
        url: socialops_storage::create_scratch_postgres(&args.database_url, "socialops_bench")
            .await?,
        max_connections: u32::try_from(args.clients.max(8)).unwrap_or(16),
    };
    let data_dir = tempfile::tempdir()?;
    let config = CampaignConfig {
        grpc_listen: "127.0.0.1:0".parse()?,
        database: Some(database.clone()),
        consumer_group: format!("bench-promotions-{run_id}"),
        ..CampaignConfig::default()
    };
    let tokens = TokenStore::default();
    let deps = Dependencies {
        create_topics: false,
        ..Dependencies::new(kafka, topics, tokens.clone(), data_dir.path().into())
    };
    let shutdown = CancellationToken::new();
    let running = socialops_campaign::start(&config, deps.clone(), shutdown.clone()).await?;
    let db = Db::connect(&database).await?;

    let raw_spread = raw_updates(&db, args.clients, args.codes, false).await?;
    let raw_hot = raw_updates(&db, args.clients, args.codes, true).await?;
    println!(
        "raw PostgreSQL: {:.0} single-row update transactions/s over a row per client, {:.0}/s all \
         on one row ({} clients)",
        raw_spread, raw_hot, args.clients
    );

    let (grpc, token) = channel(running.grpc_addr, &tokens).await?;
    let mut coupons = CouponServiceClient::with_interceptor(grpc.clone(), token.clone());
    coupons
        .create_pool(CreatePoolRequest {
            pool: Some(CouponPool {
                id: POOL.into(),
                name: "Bench".into(),
                code_prefix: "B-".into(),
                value_cents: VALUE_CENTS,
                currency: "CNY".into(),
                value_budget_cents: VALUE_CENTS * i64::try_from(args.budget_codes)?,
                ..CouponPool::default()
            }),
        })
        .await?;
    seed_codes(&db, args.codes).await?;
    let rate = redeem_all(&coupons, args.clients, args.codes).await?;
    let pool = coupons
        .get_pool(GetPoolRequest {
            pool_id: POOL.into(),
        })
        .await?
        .into_inner();
    let (ok, exhausted) = (rate.ok, rate.exhausted);
    let exact = ok == args.budget_codes.min(args.codes) as u64
        && pool.num_redeemed == ok
        && pool.redeemed_value_cents == VALUE_CENTS * i64::try_from(ok)?;
    println!(
        "coupon redemption over gRPC: {} codes in {:.2} s = {:.0}/s; ratio {:.3} to raw one-row \
         updates, {:.3} to raw spread updates; {ok} redeemed, {exhausted} refused by the value \
         budget, pool redeemed {} cents: budget held exactly = {exact}",
        args.codes,
        rate.elapsed.as_secs_f64(),
        rate.per_second,
        rate.per_second / raw_hot,
        rate.per_second / raw_spread,
        pool.redeemed_value_cents
    );
    anyhow::ensure!(exact, "the value budget was not held exactly");

    let mut campaign_id = None;
    if args.report_users > 0 {
        campaign_id = Some(report(&running, &db, &grpc, &token, args.report_users, &run_id).await?);
    }
    shutdown.cancel();
    running.wait().await?;
    if let Some(campaign_id) = campaign_id
        && args.attribution_events > 0
    {
        attribution(
            &config,
            &deps,
            &db,
            &campaign_id,
            args.report_users,
            args.attribution_events,
        )
        .await?;
    }
    db.close().await;
    Ok(())
}

/// Orders and clicks of the report's users through the events consumer, against raw consume.
async fn attribution(
    config: &CampaignConfig,
    deps: &Dependencies,
    db: &Db,
    campaign_id: &str,
    users: usize,
    events: usize,
) -> anyhow::Result<()> {
    use socialops_proto::events::v1::social_event::Payload;
    use socialops_proto::events::v1::{ContentClick, OrderPlaced, Platform, SocialEvent};
    let topic = deps.topics.events.clone();
    let now_us = socialops_storage::now_micros();
    let messages: Vec<socialops_bus::OutgoingMessage> = (0..events)
        .map(|i| {
            // Users who were sent to (not a multiple of ten), spread over the campaign.
            let g = (i * 7_919) % users + 1;
            let g = if g.is_multiple_of(10) { g + 1 } else { g };
            let user = format!("r{g}");
            let (payload, attributes) = if i % 2 == 0 {
                (
                    Payload::OrderPlaced(OrderPlaced {
                        order_id: format!("attr-{i}"),
                        amount_cents: 9_900,
                        currency: "CNY".into(),
                        items: Vec::new(),
                        coupon_code: String::new(),
                    }),
                    std::collections::HashMap::new(),
                )
            } else {
                (
                    Payload::ContentClick(ContentClick {
                        content_id: "spring".into(),
                        category: String::new(),
                        url: String::new(),
                    }),
                    std::collections::HashMap::from([(
                        "send_key".to_owned(),
                        format!("{TENANT}:{campaign_id}:s1:{user}:1"),
                    )]),
                )
            };
            let event = SocialEvent {
                event_id: format!("attr-{i}"),
                tenant_id: TENANT.into(),
                platform: Platform::Wechat as i32,
                user_id: user,
                occurred_at: Some(socialops_proto::timestamp(now_us)),
                attributes,
                received_at: Some(socialops_proto::timestamp(now_us)),
                payload: Some(payload),
            };
            crate::sentiment::message(&topic, &event)
        })
        .collect();
    let producer = socialops_bus::Producer::new(&deps.kafka)?;
    for chunk in messages.chunks(10_000) {
        producer.send_all(chunk).await?;
    }
    let raw = crate::sentiment::consumer(&deps.kafka, &topic)?;
    let started = Instant::now();
    for _ in 0..events {
        tokio::time::timeout(Duration::from_secs(60), raw.recv())
            .await
            .map_err(|_| anyhow::anyhow!("raw consume made no progress for 60 s"))??;
    }
    let raw_rate = events as f64 / started.elapsed().as_secs_f64();
    drop(raw);
    let consumed =
        crate::consumed::Consumed::new(&format!("{}-events", config.consumer_group), &topic);
    let shutdown = CancellationToken::new();
    let running = socialops_campaign::start(config, deps.clone(), shutdown.clone()).await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first: Option<(Instant, u64)> = None;
    let total = u64::try_from(events)?;
    loop {
        let done = consumed.count();
        if first.is_none() && done > 0 {
            first = Some((Instant::now(), done));
        }
        if done >= total {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "attribution handled {done} of {events} in 600 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (at, base) = first.unwrap_or((Instant::now(), 0));
    let rate = (total - base) as f64 / at.elapsed().as_secs_f64().max(1e-3);
    println!(
        "attribution: {events} orders and clicks at {rate:.0}/s, ratio {:.3} to raw consume \
         ({raw_rate:.0}/s)",
        rate / raw_rate
    );
    shutdown.cancel();
    running.wait().await?;
    let credited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM conversions WHERE order_id LIKE 'attr-%' AND campaign_id = $1",
    )
    .bind(campaign_id)
    .fetch_one(db.pool())
    .await?;
    let clicks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM engagements WHERE campaign_id = $1")
        .bind(campaign_id)
        .fetch_one(db.pool())
        .await?;
    println!("attribution: {credited} orders credited to the campaign, {clicks} clicks counted");
    anyhow::ensure!(
        usize::try_from(credited + clicks)? == events,
        "not every order and click took effect"
    );
    Ok(())
}

/// Committed single-statement update transactions per second from `clients` connections.
async fn raw_updates(db: &Db, clients: usize, total: usize, hot: bool) -> anyhow::Result<f64> {
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_rows (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)")
        .execute(db.pool())
        .await?;
    sqlx::query(
        "INSERT INTO bench_rows SELECT g, 0 FROM generate_series(0, 1000) g ON CONFLICT DO NOTHING",
    )
    .execute(db.pool())
    .await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (db, next) = (db.clone(), next.clone());
        tasks.spawn(async move {
            let row = if hot {
                0
            } else {
                i64::try_from(client + 1).unwrap_or(1)
            };
            while next.fetch_add(1, Ordering::Relaxed) < total {
                sqlx::query("UPDATE bench_rows SET n = n + 1 WHERE id = $1")
                    .bind(row)
                    .execute(db.pool())
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    for result in tasks.join_all().await {
        result?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// `codes` codes of the pool, one per user, written in one statement.
async fn seed_codes(db: &Db, codes: usize) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO coupons (tenant_id, code, pool_id, user_id, issue_key, campaign_id, \
         value_cents, currency, issued_at_us) SELECT $1, 'B-' || g, $2, 'u' || g, 'seed:' || g, \
         '', $3, 'CNY', 0 FROM generate_series(1, $4) g",
    )
    .bind(TENANT)
    .bind(POOL)
    .bind(VALUE_CENTS)
    .bind(i64::try_from(codes)?)
    .execute(db.pool())
    .await?;
    sqlx::query("UPDATE coupon_pools SET num_issued = $3 WHERE tenant_id = $1 AND pool_id = $2")
        .bind(TENANT)
        .bind(POOL)
        .bind(i64::try_from(codes)?)
        .execute(db.pool())
        .await?;
    sqlx::query("ANALYZE coupons").execute(db.pool()).await?;
    Ok(())
}

struct Redeemed {
    ok: u64,
    exhausted: u64,
    elapsed: Duration,
    per_second: f64,
}

async fn redeem_all(
    client: &CouponServiceClient<Authed>,
    clients: usize,
    codes: usize,
) -> anyhow::Result<Redeemed> {
    let next = Arc::new(AtomicUsize::new(1));
    let ok = Arc::new(AtomicU64::new(0));
    let exhausted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let mut client = client.clone();
        let (next, ok, exhausted) = (next.clone(), ok.clone(), exhausted.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i > codes {
                    return anyhow::Ok(());
                }
                let result = client
                    .redeem_coupon(RedeemCouponRequest {
                        code: format!("B-{i}"),
                        user_id: format!("u{i}"),
                        order_id: format!("o{i}"),
                        order_amount_cents: 9_900,
                    })
                    .await;
                match result {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                        exhausted.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(status) => anyhow::bail!("redeem B-{i}: {status}"),
                };
            }
        });
    }
    for result in tasks.join_all().await {
        result?;
    }
    let elapsed = started.elapsed();
    Ok(Redeemed {
        ok: ok.load(Ordering::Relaxed),
        exhausted: exhausted.load(Ordering::Relaxed),
        elapsed,
        per_second: codes as f64 / elapsed.as_secs_f64(),
    })
}

async fn report(
    running: &socialops_campaign::RunningCampaign,
    db: &Db,
    grpc: &Channel,
    token: &BearerToken,
    users: usize,
    run_id: &str,
) -> anyhow::Result<String> {
    let engine = running.engine.clone();
    let spec = parse(DEFINITION, Format::Toml).map_err(|e| anyhow::anyhow!("{e}"))?;
    let campaign = engine
        .create_campaign(TENANT, format!("report-{run_id}"), spec)
        .await?;
    let id = campaign.campaign_id.clone();
    engine
        .start(
            &Change {
                tenant_id: TENANT,
                campaign_id: &id,
                actor: "bench",
                reason: "bench",
            },
            &[],
        )
        .await?;
    let seeding = Instant::now();
    let n = i64::try_from(users)?;
    let now_us = socialops_storage::now_micros();
    let state = serde_json::to_string(&JourneyState {
        step: 1,
        waiting: None,
        facts: Facts::default(),
        variant: "a".into(),
        entered_at: chrono::DateTime::from_timestamp_micros(now_us).unwrap_or_default(),
        exited: None,
    })?;
    for sql in [
        "INSERT INTO journeys (tenant_id, campaign_id, user_id, occurrence, holdout, variant_id, \
         step_id, state, entered_at_us, exited_at_us, exit_reason) SELECT $1, $2, 'r' || g, 1, \
         CASE WHEN g % 10 = 0 THEN 1 ELSE 0 END, CASE WHEN (g / 10) % 2 = 0 THEN 'a' ELSE 'b' END, '', \
         $5, $4, $4, 'completed' FROM generate_series(1, $3) g",
        "INSERT INTO sends (send_key, tenant_id, campaign_id, user_id, step_id, occurrence, \
         variant_id, channel, kind, body, state, first_ready_at_us, decided_at_us, created_at_us) \
         SELECT $1 || ':' || $2 || ':s1:r' || g || ':1', $1, $2, 'r' || g, 's1', 1, \
         CASE WHEN (g / 10) % 2 = 0 THEN 'a' ELSE 'b' END, 'direct_message', 'content', '{}', 'sent', $4, \
         $4, $4 FROM generate_series(1, $3) g WHERE g % 10 <> 0",
        "INSERT INTO conversions (tenant_id, order_id, user_id, campaign_id, variant_id, arm, \
         send_key, touched_at_us, amount_cents, first_order, at_us) SELECT $1, 'o' || g, \
         'r' || g, $2, CASE WHEN (g / 10) % 2 = 0 THEN 'a' ELSE 'b' END, \
         CASE WHEN g % 10 = 0 THEN 'holdout' ELSE 'variant' END, NULL, $4, 5000 + g % 7000, 1, $4 \
         FROM generate_series(1, $3) g WHERE g % 20 = 3 OR g % 23 = 0",
    ] {
        let query = sqlx::query(sql).bind(TENANT).bind(&id).bind(n).bind(now_us);
        // Only the journeys take the state; the store reads it back as the journey's.
        let query = if sql.starts_with("INSERT INTO journeys") {
            query.bind(state.as_str())
        } else {
            query
        };
        query.execute(db.pool()).await?;
    }
    sqlx::query("ANALYZE").execute(db.pool()).await?;
    println!(
        "report: seeded {users} users ({} held out) in {:.1} s",
        users / 10,
        seeding.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let sent: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sends WHERE tenant_id = $1 AND campaign_id = $2 AND state = 'sent'",
    )
    .bind(TENANT)
    .bind(&id)
    .fetch_one(db.pool())
    .await?;
    let raw = started.elapsed();
    let mut client = CampaignServiceClient::with_interceptor(grpc.clone(), token.clone());
    let mut best = Duration::MAX;
    let mut summary = String::new();
    for _ in 0..3 {
        let started = Instant::now();
        let report = client
            .get_campaign_report(GetCampaignReportRequest {
                campaign_id: id.clone(),
            })
            .await?
            .into_inner();
        best = best.min(started.elapsed());
        summary = report.summary;
    }
    println!(
        "GetCampaignReport over {users} users: best of 3 in {:.3} s; raw COUNT(*) of its {sent} \
         sends {:.3} s (ratio {:.1}); {summary}",
        best.as_secs_f64(),
        raw.as_secs_f64(),
        best.as_secs_f64() / raw.as_secs_f64()
    );
    Ok(id)
}
