use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use tracing::{debug, info, warn};

/// librdkafka callbacks; they run on whichever thread polls the consumer, so they only log and set
/// gauges.
pub(crate) struct Context {
    pub(crate) group: String,
}

impl ClientContext for Context {
    /// Reaching the end of a partition is news, not an error: a reader that asked for it
    /// (`enable.partition.eof`) also gets it from its poll.
    fn error(&self, error: KafkaError, reason: &str) {
        if is_end_of_partition(&error) {
            debug!(group = %self.group, reason, "end of partition");
        } else {
            tracing::error!(group = %self.group, error = %error, reason, "librdkafka error");
        }
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                // Partition -1 is librdkafka's internal unassigned queue; a negative lag means unknown.
                if *partition < 0 || p.consumer_lag < 0 {
                    continue;
                }
                metrics::gauge!(
                    "socialops_consumer_lag",
                    "topic" => topic.clone(),
                    "partition" => partition.to_string(),
                    "group" => self.group.clone()
                )
                .set(p.consumer_lag as f64);
            }
        }
    }
}

impl ConsumerContext for Context {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                info!(group = %self.group, partitions = %describe(tpl), "partitions assigned")
            }
            Rebalance::Revoke(tpl) => {
                info!(group = %self.group, partitions = %describe(tpl), "partitions revoked")
            }
            Rebalance::Error(e) => warn!(group = %self.group, error = %e, "rebalance failed"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => warn!(group = %self.group, error = %e, "offset commit failed"),
        }
    }
}

fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| format!("{}/{}", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

fn is_end_of_partition(error: &KafkaError) -> bool {
    matches!(error, KafkaError::Global(RDKafkaErrorCode::PartitionEOF))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_a_partition_is_no_error() {
        assert!(is_end_of_partition(&KafkaError::Global(
            RDKafkaErrorCode::PartitionEOF
        )));
        assert!(!is_end_of_partition(&KafkaError::Global(
            RDKafkaErrorCode::AllBrokersDown
        )));
    }
}
