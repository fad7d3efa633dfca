//! How many messages of a topic a service's consumer group has handled, from the
//! `socialops_consumer_messages_total` counter in the Prometheus exposition that `/metrics` serves.
//! The consumer counts a batch once its effects are durable in the service's store.

pub struct Consumed {
    group: String,
    topic: String,
}

impl Consumed {
    /// Installs the process's metrics recorder: counts made before it is installed are lost, so this
    /// comes before the service starts.
    pub fn new(group: &str, topic: &str) -> Self {
        socialops_telemetry::metrics_handle();
        Self {
            group: group.to_owned(),
            topic: topic.to_owned(),
        }
    }

    pub fn count(&self) -> u64 {
        let exposition = socialops_telemetry::metrics_handle().render();
        counter_value(&exposition, &self.group, &self.topic)
    }
}

fn counter_value(exposition: &str, group: &str, topic: &str) -> u64 {
    let group = format!("group=\"{group}\"");
    let topic = format!("topic=\"{topic}\"");
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("socialops_consumer_messages_total{"))
        .filter_map(|line| line.split_once("} "))
        .filter(|(labels, _)| {
            labels.split(',').any(|label| label == group)
                && labels.split(',').any(|label| label == topic)
        })
        .filter_map(|(_, value)| value.trim().parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::counter_value;

    #[test]
    fn reads_the_counter_of_one_group_and_topic() {
        let exposition = "\
# TYPE socialops_consumer_messages_total counter
socialops_consumer_messages_total{topic=\"events\",group=\"a\"} 120
socialops_consumer_messages_total{topic=\"events\",group=\"b\"} 7
socialops_consumer_messages_total{topic=\"privacy\",group=\"a-privacy\"} 3
socialops_consumer_batch_seconds_count{group=\"a\"} 4
";
        assert_eq!(counter_value(exposition, "a", "events"), 120);
        assert_eq!(counter_value(exposition, "b", "events"), 7);
        assert_eq!(counter_value(exposition, "a", "privacy"), 0);
        assert_eq!(counter_value(exposition, "c", "events"), 0);
    }
}
