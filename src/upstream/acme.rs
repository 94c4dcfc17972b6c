//! The HTTP client of the ACME CA. `instant-acme` speaks the protocol (JWS, nonces,
//! orders); every request it makes goes out through this reqwest client, so outbound
//! HTTP stays in `upstream/` (timeouts, `User-Agent`, an extra trusted root for a
//! private or test CA from `WAGATE_ACME_CA_ROOT`).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};

use super::USER_AGENT;

/// No ACME answer (directory, order, certificate chain) comes near this.
const MAX_RESPONSE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AcmeHttpError {
    #[error("cannot read the CA root {path}: {message}")]
    CaRoot { path: String, message: String },
    #[error("cannot build the ACME HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

#[derive(Clone)]
pub struct AcmeHttp {
    http: reqwest::Client,
}

impl AcmeHttp {
    /// The public web PKI roots, plus `ca_root` (PEM, one or more certificates).
    pub fn new(ca_root: Option<&Path>) -> Result<AcmeHttp, AcmeHttpError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = ca_root {
            let err = |message: String| AcmeHttpError::CaRoot {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| err(e.to_string()))?;
            if certs.is_empty() {
                return Err(err("no certificate in the file".into()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(AcmeHttp {
            http: builder.build()?,
        })
    }
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> instant_acme::Error {
    instant_acme::Error::Other(Box::new(e))
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let http = self.http.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let mut headers = parts.headers;
            // instant-acme names itself; say who is calling, as every wagate call does.
            headers.insert(
                http::header::USER_AGENT,
                http::HeaderValue::from_static(concat!(
                    "wagate/",
                    env!("CARGO_PKG_VERSION"),
                    " instant-acme"
                )),
            );
            let mut resp = http
                .request(parts.method, parts.uri.to_string())
                .headers(headers)
                .body(body)
                .send()
                .await
                .map_err(other)?;
            let mut answer = http::Response::builder().status(resp.status());
            for (name, value) in resp.headers() {
                answer = answer.header(name, value);
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(other)? {
                if bytes.len() + chunk.len() > MAX_RESPONSE {
                    return Err(instant_acme::Error::Str("ACME answer larger than 1 MiB"));
                }
                bytes.extend_from_slice(&chunk);
            }
            let answer = answer.body(Full::new(Bytes::from(bytes))).map_err(other)?;
            Ok(BytesResponse::from(answer))
        })
    }
}
