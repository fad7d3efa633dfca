//! librdkafka's in-process mock cluster as a Kafka-protocol broker for `socialops dev` and tests.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::mocking::MockCluster;
use tracing::info;

use crate::config::KafkaConfig;
use crate::error::BusError;

/// A one-broker mock cluster listening on an ephemeral loopback port; external clients can connect to
/// [`bootstrap_servers`](Self::bootstrap_servers). Messages live in memory only. Stops on drop.
///
/// `MockCluster` holds a raw librdkafka handle and is not `Send`, so it lives on its own thread and
/// this handle only carries the address and a stop signal.
pub struct EmbeddedBroker {
    bootstrap_servers: String,
    stop_tx: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts the broker and creates `topics` (the mock cluster does not implement CreateTopics, so
    /// [`ensure_topics`](crate::ensure_topics) does not work against it).
    pub fn start(topics: &[&str], partitions: i32) -> Result<Self, BusError> {
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, BusError>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("embedded-kafka".into())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(cluster) => cluster,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                for topic in &topics {
                    if let Err(e) = cluster.create_topic(topic, partitions, 1) {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                }
                if ready_tx.send(Ok(cluster.bootstrap_servers())).is_err() {
                    return;
                }
                // Returns when the handle sends the stop signal or is dropped.
                let _ = stop_rx.recv();
                drop(cluster);
            })
            .map_err(|e| BusError::Embedded(format!("cannot start broker thread: {e}")))?;
        let bootstrap_servers = ready_rx
            .recv()
            .map_err(|_| BusError::Embedded("broker thread exited during start-up".into()))??;
        info!(bootstrap_servers = %bootstrap_servers, "embedded kafka started");
        Ok(Self {
            bootstrap_servers,
            stop_tx: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn bootstrap_servers(&self) -> String {
        self.bootstrap_servers.clone()
    }

    pub fn kafka_config(&self) -> KafkaConfig {
        KafkaConfig::new(self.bootstrap_servers.clone())
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        drop(self.stop_tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_can_move_between_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<EmbeddedBroker>();
    }

    #[test]
    fn creates_topics_and_exposes_its_address() {
        let broker = EmbeddedBroker::start(&["a", "b"], 3).unwrap();
        let servers = broker.bootstrap_servers();
        assert!(
            servers.starts_with("127.0.0.1:") || servers.starts_with("localhost:"),
            "{servers}"
        );
        assert_eq!(broker.kafka_config().bootstrap_servers, servers);
    }
}
