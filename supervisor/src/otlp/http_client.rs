//! The HTTP client of the OTLP/HTTP exporter: ureq (rustls with ring, as the cloud bundle
//! fetch uses), trusting a private CA when one is configured.
use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

use super::transport::{ConfigError, ExportConfig};

/// Collectors answer with a small protobuf status; anything larger is not read.
const MAX_RESPONSE: u64 = 1 << 20;

#[derive(Debug)]
pub struct UreqClient {
    agent: ureq::Agent,
}

impl UreqClient {
    pub fn new(config: &ExportConfig) -> Result<Self, ConfigError> {
        let mut builder = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false);
        if let Some(path) = &config.ca_file {
            let tls = crate::tls::trust_only(path).map_err(ConfigError::Tls)?;
            builder = builder.tls_config(tls);
        }
        Ok(Self {
            agent: ureq::Agent::new_with_config(builder.build()),
        })
    }

    fn send_blocking(
        agent: &ureq::Agent,
        request: Request<Bytes>,
    ) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, body.to_vec());
        let mut response = agent.run(request)?;
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()?;
        Ok(Response::builder().status(status).body(Bytes::from(body))?)
    }
}

#[async_trait::async_trait]
impl HttpClient for UreqClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let agent = self.agent.clone();
        // The log exporter runs on tokio; the metrics reader on its own thread, without one.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(move || Self::send_blocking(&agent, request))
                .await
                .map_err(|e| -> HttpError { Box::new(e) })?,
            Err(_) => Self::send_blocking(&agent, request),
        }
    }
}
