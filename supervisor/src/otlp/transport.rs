//! The collector connection: OTLP over gRPC (tonic) or HTTP/protobuf, with headers and an
//! optional private CA, built with opentelemetry-otlp; and the exporter that sends batches of
//! audit records and tells whether the collector acknowledged them.
//!
//! The library's own retries are off: delivery (`delivery.rs`) retries with its own backoff,
//! because only it knows that a batch must not be skipped.
use std::{collections::HashMap, path::PathBuf, sync::Arc, time::Duration};

use opentelemetry::{
    KeyValue,
    logs::{LogRecord as _, Logger as _, LoggerProvider as _},
    metrics::{Counter, MeterProvider as _},
};
use opentelemetry_otlp::{
    LogExporter, MetricExporter, Protocol, RetryPolicy, WithExportConfig, WithHttpConfig,
    WithTonicConfig,
    tonic_types::{
        metadata::MetadataMap,
        transport::{Certificate, ClientTlsConfig},
    },
};
use opentelemetry_sdk::{
    Resource,
    logs::{LogBatch, LogExporter as _, SdkLogRecord, SdkLogger, SdkLoggerProvider},
    metrics::{PeriodicReader, SdkMeterProvider},
};

use super::mapping::{self, Mapped};
use crate::events::{Event, Record};
use warden_requirements::values::OtlpProtocol;

#[derive(Clone, Debug)]
pub struct ExportConfig {
    pub endpoint: String,
    /// With http/protobuf the endpoint is the base URL; `/v1/logs` and `/v1/metrics` are added.
    pub transport: OtlpProtocol,
    /// Sent with every request (gRPC metadata or HTTP headers); names in lower case.
    pub headers: Vec<(String, String)>,
    /// Trust only this CA (PEM) for the collector's certificate.
    pub ca_file: Option<PathBuf>,
    /// Longest one export request may take.
    pub timeout: Duration,
    /// Also send the event, decision and loss counters as OTLP metrics.
    pub metrics: bool,
}

impl ExportConfig {
    pub fn new(endpoint: impl Into<String>, transport: OtlpProtocol) -> Self {
        Self {
            endpoint: endpoint.into(),
            transport,
            headers: Vec::new(),
            ca_file: None,
            timeout: Duration::from_secs(10),
            metrics: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the OTLP CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the OTLP CA: {0}")]
    Tls(String),
    #[error("OTLP header `{0}`: not a valid gRPC metadata entry")]
    Header(String),
    #[error("the OTLP exporter for {endpoint}: {message}")]
    Build { endpoint: String, message: String },
}

/// A batch the collector did not acknowledge.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SendError(pub String);

/// The counters sent as OTLP metrics.
struct Counters {
    events: Counter<u64>,
    decisions: Counter<u64>,
    lost: Counter<u64>,
}

pub struct Exporter {
    logs: LogExporter,
    logger: SdkLogger,
    scope: opentelemetry::InstrumentationScope,
    meters: Option<(SdkMeterProvider, Counters)>,
    /// Keeps the logger's provider alive (it only makes records here: it has no processor).
    _provider: SdkLoggerProvider,
    endpoint: String,
}

fn resource() -> Resource {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut attributes = vec![
        KeyValue::new("service.name", "warden"),
        KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        KeyValue::new("host.name", host),
        KeyValue::new("os.type", "linux"),
    ];
    if let Ok(id) = std::fs::read_to_string("/etc/machine-id") {
        attributes.push(KeyValue::new("host.id", id.trim().to_string()));
    }
    Resource::builder_empty()
        .with_attributes(attributes)
        .build()
}

fn tls(config: &ExportConfig) -> Result<Option<ClientTlsConfig>, ConfigError> {
    let https = config.endpoint.starts_with("https://");
    match &config.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| ConfigError::CaFile {
                path: path.clone(),
                source,
            })?;
            Ok(Some(
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
            ))
        }
        None if https => Ok(Some(ClientTlsConfig::new().with_webpki_roots())),
        None => Ok(None),
    }
}

fn metadata(config: &ExportConfig) -> Result<MetadataMap, ConfigError> {
    let mut headers = http::HeaderMap::new();
    for (name, value) in &config.headers {
        let key = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ConfigError::Header(name.clone()))?;
        let value =
            http::HeaderValue::from_str(value).map_err(|_| ConfigError::Header(name.clone()))?;
        headers.insert(key, value);
    }
    Ok(MetadataMap::from_headers(headers))
}

/// `base` + `path`, unless the URL already names a path.
fn http_url(base: &str, path: &str) -> String {
    let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
    if after_scheme.trim_end_matches('/').contains('/') {
        base.to_string()
    } else {
        format!("{}{path}", base.trim_end_matches('/'))
    }
}

/// An OTLP exporter of `$kind` (LogExporter, MetricExporter) for `$config`: the same transport,
/// headers, TLS and timeout for both; no retries of its own.
macro_rules! exporter {
    ($kind:ident, $http_path:literal, $config:expr) => {{
        let config: &ExportConfig = $config;
        match config.transport {
            OtlpProtocol::Grpc => {
                let mut b = $kind::builder()
                    .with_tonic()
                    .with_endpoint(&config.endpoint)
                    .with_timeout(config.timeout)
                    .with_retry_policy(RetryPolicy::disabled())
                    .with_metadata(metadata(config)?);
                if let Some(tls) = tls(config)? {
                    b = b.with_tls_config(tls);
                }
                b.build()
            }
            OtlpProtocol::HttpProtobuf => $kind::builder()
                .with_http()
                .with_endpoint(http_url(&config.endpoint, $http_path))
                .with_protocol(Protocol::HttpBinary)
                .with_timeout(config.timeout)
                .with_retry_policy(RetryPolicy::disabled())
                .with_http_client(super::http_client::UreqClient::new(config)?)
                .with_headers(config.headers.iter().cloned().collect::<HashMap<_, _>>())
                .build(),
        }
        .map_err(|e| ConfigError::Build {
            endpoint: config.endpoint.clone(),
            message: e.to_string(),
        })?
    }};
}

impl Exporter {
    /// Builds the exporters; must run inside the tokio runtime (tonic's channel needs it).
    pub fn new(config: &ExportConfig) -> Result<Arc<Self>, ConfigError> {
        let resource = resource();
        let mut logs = exporter!(LogExporter, "/v1/logs", config);
        logs.set_resource(&resource);
        let meters = if config.metrics {
            let exporter = exporter!(MetricExporter, "/v1/metrics", config);
            let provider = SdkMeterProvider::builder()
                .with_resource(resource.clone())
                .with_reader(
                    PeriodicReader::builder(exporter)
                        .with_interval(Duration::from_secs(10))
                        .build(),
                )
                .build();
            let meter = provider.meter("warden");
            let counters = Counters {
                events: meter
                    .u64_counter("warden.events")
                    .with_description("Audit records delivered to the collector, by kind")
                    .build(),
                decisions: meter
                    .u64_counter("warden.decisions")
                    .with_description("Decisions delivered, by verdict and source")
                    .build(),
                lost: meter
                    .u64_counter("warden.events.lost")
                    .with_description(
                        "Events lost: not recorded (kernel, undecodable) or not exported",
                    )
                    .build(),
            };
            Some((provider, counters))
        } else {
            None
        };
        let provider = SdkLoggerProvider::builder().with_resource(resource).build();
        Ok(Arc::new(Self {
            logs,
            logger: provider.logger("warden"),
            scope: opentelemetry::InstrumentationScope::builder("warden")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            meters,
            _provider: provider,
            endpoint: config.endpoint.clone(),
        }))
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn sdk_record(&self, m: Mapped) -> SdkLogRecord {
        let mut r = self.logger.create_log_record();
        r.set_event_name(m.event_name);
        r.set_timestamp(m.timestamp);
        r.set_observed_timestamp(std::time::SystemTime::now());
        r.set_severity_number(m.severity);
        r.set_severity_text(m.severity.name());
        r.set_body(m.body.into());
        r.add_attributes(m.attributes);
        r
    }

    /// Sends `records` as one request; `Ok` once the collector acknowledged them.
    pub async fn send(&self, records: &[Record]) -> Result<(), SendError> {
        let mapped: Vec<Mapped> = records.iter().map(mapping::map).collect();
        let decisions: Vec<(&'static str, Option<String>, Option<String>)> = mapped
            .iter()
            .map(|m| {
                (
                    m.event_name,
                    m.get_str("warden.decision").map(String::from),
                    m.get_str("warden.decision.source").map(String::from),
                )
            })
            .collect();
        let sdk: Vec<SdkLogRecord> = mapped.into_iter().map(|m| self.sdk_record(m)).collect();
        let refs: Vec<(&SdkLogRecord, &opentelemetry::InstrumentationScope)> =
            sdk.iter().map(|r| (r, &self.scope)).collect();
        self.logs
            .export(LogBatch::new(&refs))
            .await
            .map_err(|e| SendError(e.to_string()))?;
        if let Some((_, c)) = &self.meters {
            for ((name, decision, source), rec) in decisions.into_iter().zip(records) {
                c.events.add(1, &[KeyValue::new("warden.kind", name)]);
                if let (Some(d), Some(s)) = (decision, source) {
                    c.decisions.add(
                        1,
                        &[
                            KeyValue::new("warden.decision", d),
                            KeyValue::new("warden.decision.source", s),
                        ],
                    );
                }
                let lost = match &rec.event {
                    Event::EventsLost(l) => {
                        l.exec + l.fork + l.exit + l.network + l.file + l.undecodable
                    }
                    Event::ExportBacklog(b) => b.records.unwrap_or(0),
                    _ => 0,
                };
                if lost > 0 {
                    c.lost.add(lost, &[KeyValue::new("warden.kind", name)]);
                }
            }
        }
        Ok(())
    }

    /// Sends the metrics one last time (bounded by the exporter's timeout).
    pub async fn shutdown(self: Arc<Self>) {
        let Some((provider, _)) = &self.meters else {
            return;
        };
        let provider = provider.clone();
        let joined = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(e)) = joined {
            tracing::debug!("flushing OTLP metrics: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_paths_are_added_to_a_base_url_only() {
        assert_eq!(
            http_url("http://127.0.0.1:4318", "/v1/logs"),
            "http://127.0.0.1:4318/v1/logs"
        );
        assert_eq!(
            http_url("https://otel.example/", "/v1/logs"),
            "https://otel.example/v1/logs"
        );
        assert_eq!(
            http_url("https://otel.example/custom/logs", "/v1/logs"),
            "https://otel.example/custom/logs"
        );
    }

    #[test]
    fn bad_headers_and_ca_files_are_named() {
        let mut c = ExportConfig::new("http://127.0.7.1:4700", OtlpProtocol::Grpc);
        c.headers.push(("bad key".into(), "v".into()));
        assert!(metadata(&c).unwrap_err().to_string().contains("bad key"));
        c.headers.clear();
        c.ca_file = Some("/nonexistent/ca.pem".into());
        let err = tls(&c).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
