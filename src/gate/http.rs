//! One HTTP request over a stream we already have (an SSH `direct-tcpip` tunnel or a TCP
//! connection), with hyper, and TLS with rustls for `https`.

use std::sync::Arc;

use http::{Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// What came back.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

/// Why a request gave no response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("no host in {uri}")]
    NoHost { uri: String },
    #[error("bad TLS name {host}: {error}")]
    TlsName { host: String, error: String },
    #[error("TLS handshake failed: {error}")]
    Tls { error: String },
    #[error("HTTP handshake failed: {error}")]
    Handshake { error: String },
    #[error("bad request: {error}")]
    Request { error: String },
    #[error("request failed: {error}")]
    Send { error: String },
    #[error("reading the body failed: {error}")]
    Body { error: String },
}

/// The largest body read (health pages are small).
const BODY_LIMIT: usize = 1 << 20;

/// Where a URL points.
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

pub fn endpoint(uri: &Uri) -> Result<Endpoint, HttpError> {
    let tls = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or_else(|| HttpError::NoHost {
        uri: uri.to_string(),
    })?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok(Endpoint {
        port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
        host,
        tls,
    })
}

/// GETs `uri` over `stream`.
pub async fn get<S>(stream: S, uri: &Uri, insecure: bool) -> Result<Response, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ep = endpoint(uri)?;
    if ep.tls {
        let name = ServerName::try_from(ep.host.clone()).map_err(|e| HttpError::TlsName {
            host: ep.host.clone(),
            error: e.to_string(),
        })?;
        let tls = TlsConnector::from(Arc::new(tls_config(insecure)))
            .connect(name, stream)
            .await
            .map_err(|e| HttpError::Tls {
                error: e.to_string(),
            })?;
        send(tls, uri).await
    } else {
        send(stream, uri).await
    }
}

async fn send<S>(stream: S, uri: &Uri) -> Result<Response, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| HttpError::Handshake {
            error: e.to_string(),
        })?;
    let driver = tokio::spawn(conn);
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let request = Request::get(path)
        .header(http::header::HOST, authority)
        .header(http::header::USER_AGENT, "ngfleet-gate")
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| HttpError::Request {
            error: e.to_string(),
        })?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| HttpError::Send {
            error: e.to_string(),
        })?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = Limited::new(response.into_body(), BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| HttpError::Body {
            error: e.to_string(),
        })?
        .to_bytes();
    driver.abort();
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn tls_config(insecure: bool) -> ClientConfig {
    if insecure {
        return ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate))
            .with_no_client_auth();
    }
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// For `insecure: true` gates (self-signed certificates): the connection is still TLS, but the
/// certificate is not checked.
#[derive(Debug)]
struct AcceptAnyCertificate;

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::CryptoProvider::get_default()
            .map(|p| p.signature_verification_algorithms.supported_schemes())
            .unwrap_or_else(|| {
                rustls::crypto::aws_lc_rs::default_provider()
                    .signature_verification_algorithms
                    .supported_schemes()
            })
    }
}
