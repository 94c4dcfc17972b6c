//! One ACME order, start to finish: the account (stored, or created once), the
//! order, a TLS-ALPN-01 challenge certificate per pending authorization (served by
//! the TLS resolver while the CA validates), finalization with a fresh key, and the
//! certificate chain.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};

use super::files::{AcmeFiles, StoredAccount};
use super::{cert, AcmeError};
use crate::config::AcmeConfig;
use crate::tls::TlsConfig;
use crate::upstream::acme::AcmeHttp;

/// A newly issued certificate.
pub struct Issued {
    pub key_pem: String,
    pub chain_pem: String,
}

/// How long to wait for the CA to validate, and then to issue.
fn retry_policy() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(Duration::from_secs(120))
}

/// Removes the challenge certificates when the order ends, however it ends.
struct Published {
    tls: Arc<TlsConfig>,
    domains: Vec<String>,
}

impl Drop for Published {
    fn drop(&mut self) {
        for d in &self.domains {
            self.tls.set_challenge(d, None);
        }
    }
}

/// The stored account for this CA, or a new one (stored before it is used).
async fn account(
    config: &AcmeConfig,
    http: &AcmeHttp,
    files: &AcmeFiles,
) -> Result<Account, AcmeError> {
    let f = files.clone();
    let stored = super::blocking(move || f.read_account()).await?;
    let contact: Vec<String> = config.email.iter().map(|e| format!("mailto:{e}")).collect();
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    if let Some(mut stored) = stored.filter(|s| s.directory == config.directory) {
        let credentials = serde_json::from_value(stored.credentials.clone())
            .map_err(|e| AcmeError::Files(format!("account.json: {e}")))?;
        let account = Account::builder_with_http(Box::new(http.clone()))
            .from_credentials(credentials)
            .await?;
        if stored.email != config.email {
            account.update_contacts(&contact).await?;
            stored.email = config.email.clone();
            let f = files.clone();
            super::blocking(move || f.write_account(&stored)).await?;
            tracing::info!("ACME account contact updated");
        }
        return Ok(account);
    }
    let (account, credentials) = Account::builder_with_http(Box::new(http.clone()))
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            config.directory.clone(),
            None,
        )
        .await?;
    let stored = StoredAccount {
        directory: config.directory.clone(),
        email: config.email.clone(),
        credentials: serde_json::to_value(&credentials)
            .map_err(|e| AcmeError::Files(format!("cannot encode the account: {e}")))?,
    };
    let f = files.clone();
    super::blocking(move || f.write_account(&stored)).await?;
    tracing::info!(directory = %config.directory, account = %account.id(), "ACME account created");
    Ok(account)
}

/// Orders a certificate for `config.domains`, answering TLS-ALPN-01 through `tls`.
pub async fn issue(
    config: &AcmeConfig,
    http: &AcmeHttp,
    files: &AcmeFiles,
    tls: &Arc<TlsConfig>,
) -> Result<Issued, AcmeError> {
    let account = account(config, http, files).await?;
    let identifiers: Vec<Identifier> = config
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut published = Published {
        tls: tls.clone(),
        domains: Vec::new(),
    };
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            // Validated recently for this account: nothing to prove.
            AuthorizationStatus::Valid => continue,
            status => {
                return Err(AcmeError::Order(format!(
                    "authorization for {} is {status:?}",
                    authz.identifier()
                )))
            }
        }
        let domain = authz.identifier().to_string();
        let mut challenge = authz.challenge(ChallengeType::TlsAlpn01).ok_or_else(|| {
            AcmeError::Order(format!(
                "the CA offers no tls-alpn-01 challenge for {domain}"
            ))
        })?;
        let answer =
            cert::challenge_certificate(&domain, challenge.key_authorization().digest().as_ref())?;
        tls.set_challenge(&domain, Some(answer));
        published.domains.push(domain.clone());
        challenge.set_ready().await?;
        tracing::debug!(%domain, "ACME tls-alpn-01 challenge ready");
    }
    let status = order.poll_ready(&retry_policy()).await?;
    if status != OrderStatus::Ready {
        return Err(AcmeError::Order(failure_detail(&mut order).await));
    }
    drop(published);
    let (key_pem, csr) = cert::key_and_csr(&config.domains)?;
    order.finalize_csr(&csr).await?;
    let chain_pem = order.poll_certificate(&retry_policy()).await?;
    Ok(Issued { key_pem, chain_pem })
}

/// Why an order became invalid: the challenge errors the CA reported.
async fn failure_detail(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        let Ok(state) = authz.refresh().await else {
            continue;
        };
        for c in &state.challenges {
            if let Some(e) = &c.error {
                reasons.push(format!("{}: {e}", state.identifier()));
            }
        }
    }
    if reasons.is_empty() {
        "the order became invalid".into()
    } else {
        format!("validation failed: {}", reasons.join("; "))
    }
}
