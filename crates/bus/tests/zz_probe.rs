use std::time::Duration;
use std::sync::Arc;
use rdkafka::consumer::{Consumer, BaseConsumer};
use socialops_bus::*;

struct Ok_;
impl BatchHandler for Ok_ { async fn handle(&self, b: &[ReceivedMessage]) -> Result<Vec<DeadLetter>, HandlerError> { for m in b { println!("handled p{} o{}", m.partition, m.offset); } Ok(vec![]) } }

#[tokio::test]
async fn probe() {
    let config = KafkaConfig::new("127.0.0.1:19092");
    let t = format!("probe-{}", uuid::Uuid::new_v4().simple());
    let g = format!("g-{}", uuid::Uuid::new_v4().simple());
    ensure_topics(&config, &[&t], 2).await.unwrap();
    let p = Producer::new(&config).unwrap();
    let msgs: Vec<_> = (0..8).map(|i| OutgoingMessage::new(&t, Some(format!("k{i}")), format!("m{i}"))).collect();
    p.send_all(&msgs).await.unwrap();
    let s = tokio_util::sync::CancellationToken::new();
    let settings = ConsumerSettings { group_id: g.clone(), topics: vec![t.clone()], max_batch: 100, max_wait: Duration::from_millis(20), dlq_topic: "x".into(), drain_timeout: Duration::from_secs(5) };
    let task = tokio::spawn({ let config = config.clone(); let s = s.clone(); let p = p.clone(); async move { run_consumer(&config, settings, Arc::new(Ok_), p, s).await } });
    tokio::time::sleep(Duration::from_secs(5)).await;
    s.cancel(); task.await.unwrap().unwrap();
    println!("after -> {:?}", p.send(&OutgoingMessage::new(&t, Some("k0".into()), "after")).await.unwrap());
    let c: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", "127.0.0.1:19092").set("group.id", &g).create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(&t, 0); tpl.add_partition(&t, 1);
    println!("committed {:?}", c.committed_offsets(tpl, Duration::from_secs(5)).unwrap().to_topic_map());
}
