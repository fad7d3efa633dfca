use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::Deserialize;

/// How to reach the brokers. Its `Debug` prints the values of secret-bearing properties (passwords,
/// keys, secrets, tokens, SASL JAAS configuration) as `[redacted]`, so it can be logged.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    /// Extra librdkafka settings (`security.protocol`, `sasl.*`, tuning); they override this crate's
    /// defaults.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// How long the producer keeps trying to deliver a message before it reports a failure
    /// (librdkafka's `message.timeout.ms`, 300 s by default there). The outbox relay and the dead-letter
    /// path retry after a failure, so this bounds how long one attempt waits for a broker that is away.
    #[serde(default = "default_delivery_timeout_ms")]
    pub delivery_timeout_ms: u64,
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(key, value)| {
                let shown = if is_secret_property(key) {
                    "[redacted]"
                } else {
                    value.as_str()
                };
                (key.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("properties", &properties)
            .field("delivery_timeout_ms", &self.delivery_timeout_ms)
            .finish()
    }
}

/// librdkafka properties whose values are credentials: `sasl.password`, `ssl.key.password`,
/// `ssl.key.pem`, `sasl.oauthbearer.client.secret`, `sasl.jaas.config` and the like.
fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "key", "token", "jaas", "credential"]
        .iter()
        .any(|part| key.contains(part))
}

fn default_delivery_timeout_ms() -> u64 {
    30_000
}

impl KafkaConfig {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            properties: BTreeMap::new(),
            delivery_timeout_ms: default_delivery_timeout_ms(),
        }
    }

    /// `defaults` first, then the configured properties, so an operator can override any of them.
    pub(crate) fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// The topic names of the Kafka contract (DESIGN.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Topics {
    pub raw: String,
    pub events: String,
    pub dlq: String,
    pub profiles: String,
    pub campaigns: String,
    pub alerts: String,
    pub privacy: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self {
            raw: "socialops.events.raw".into(),
            events: "socialops.events.v1".into(),
            dlq: "socialops.events.dlq".into(),
            profiles: "socialops.profiles.v1".into(),
            campaigns: "socialops.campaigns.v1".into(),
            alerts: "socialops.alerts.v1".into(),
            privacy: "socialops.privacy.v1".into(),
        }
    }
}

impl Topics {
    /// The default names, each followed by `.{suffix}`, so tests can share one broker.
    pub fn with_suffix(suffix: &str) -> Self {
        let add = |name: String| format!("{name}.{suffix}");
        let d = Self::default();
        Self {
            raw: add(d.raw),
            events: add(d.events),
            dlq: add(d.dlq),
            profiles: add(d.profiles),
            campaigns: add(d.campaigns),
            alerts: add(d.alerts),
            privacy: add(d.privacy),
        }
    }

    pub fn all(&self) -> [&str; 7] {
        [
            &self.raw,
            &self.events,
            &self.dlq,
            &self.profiles,
            &self.campaigns,
            &self.alerts,
            &self.privacy,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_appended_to_every_topic() {
        let topics = Topics::with_suffix("t1");
        assert_eq!(topics.events, "socialops.events.v1.t1");
        assert_eq!(topics.dlq, "socialops.events.dlq.t1");
        for (plain, suffixed) in Topics::default().all().iter().zip(topics.all()) {
            assert_eq!(suffixed, format!("{plain}.t1"));
        }
    }

    #[test]
    fn all_names_are_distinct() {
        let topics = Topics::default();
        let mut names = topics.all().to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 7);
    }

    #[test]
    fn debug_shows_no_secret() {
        let mut config = KafkaConfig::new("b:9092");
        for (key, value) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.username", "ops"),
            ("sasl.password", "hunter2"),
            ("ssl.key.password", "pem-pass"),
            ("sasl.oauthbearer.client.secret", "oauth-secret"),
        ] {
            config.properties.insert(key.into(), value.into());
        }
        let shown = format!("{config:?}");
        for secret in ["hunter2", "pem-pass", "oauth-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.contains("SASL_SSL") && shown.contains("ops"),
            "{shown}"
        );
        assert!(shown.contains("sasl.password"), "{shown}");
    }

    #[test]
    fn configured_properties_override_defaults() {
        let mut config = KafkaConfig::new("b:9092");
        config.properties.insert("linger.ms".into(), "50".into());
        let client = config.client_config(&[("linger.ms", "5"), ("acks", "all")]);
        assert_eq!(client.get("linger.ms"), Some("50"));
        assert_eq!(client.get("acks"), Some("all"));
        assert_eq!(client.get("bootstrap.servers"), Some("b:9092"));
    }

    #[test]
    fn topics_deserialize_with_defaults_and_reject_unknown_fields() {
        let topics: Topics = serde_json::from_str(r#"{"events":"e"}"#).unwrap();
        assert_eq!(topics.events, "e");
        assert_eq!(topics.raw, "socialops.events.raw");
        assert!(serde_json::from_str::<Topics>(r#"{"evnts":"e"}"#).is_err());
    }
}
