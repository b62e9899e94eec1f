//! One TLS stack for every connection a process makes: rustls with the `ring` crypto
//! provider, for the AWS SDK's HTTPS client and for reqwest's (the targets). `ring` instead of
//! the SDK's default `aws-lc-rs` keeps each function's binary smaller and its build shorter.

use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// Makes `ring` the process's default rustls provider, which reqwest's clients use. Idempotent.
pub fn install() {
    // Err only when a provider is installed already: the one wanted, by an earlier call.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The AWS configuration chain (environment, profile, container and instance credentials),
/// every SDK call through an HTTPS client on rustls with `ring`.
pub fn aws_defaults() -> aws_config::ConfigLoader {
    install();
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https)
}

#[cfg(all(test, feature = "http"))]
mod tests {
    /// Without a provider installed, building a reqwest client panics and the SDK's HTTPS
    /// connector cannot start a handshake. Here both start one against a loopback listener that
    /// hangs up, and report it as an error.
    #[tokio::test]
    async fn both_clients_start_a_tls_handshake_with_ring() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        });
        super::install();
        let answer = reqwest::Client::new().get(&url).send().await;
        assert!(answer.is_err(), "{answer:?}");
        let conf = super::aws_defaults()
            .endpoint_url(&url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await;
        let err = aws_sdk_secretsmanager::Client::new(&conf)
            .list_secrets()
            .send()
            .await
            .unwrap_err();
        let text = aws_smithy_types::error::display::DisplayErrorContext(&err).to_string();
        assert!(text.contains("dispatch failure"), "{text}");
    }
}
