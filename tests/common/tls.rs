//! A TLS listener in front of a plain one, as MSK's IAM port (9098) is TLS around the
//! Kafka protocol: `SASL_SSL`, the product's default with `msk-iam`. It serves the
//! broker certificate of `tests/fixtures/tls/` (signed by the test CA there, for
//! 127.0.0.1) and relays the decrypted bytes to 127.0.0.1:`upstream`. A client that
//! does not speak TLS, or does not trust the CA, fails the handshake, and the
//! listener records why.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub struct TlsFront {
    pub port: u16,
    handshakes: Arc<AtomicUsize>,
    failed: Arc<Mutex<Vec<String>>>,
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tls").join(name)
}

/// The test CA's certificate: what a client must trust (`ssl.ca.location`).
pub fn ca_file() -> PathBuf {
    fixture("ca.pem")
}

impl TlsFront {
    /// Listens on `listener` and relays each connection, once TLS is up, to `upstream`.
    pub fn start(listener: std::net::TcpListener, upstream: u16) -> Self {
        let port = listener.local_addr().unwrap().port();
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(fixture("broker.pem")).unwrap().map(Result::unwrap).collect();
        let key = PrivateKeyDer::from_pem_file(fixture("broker.key")).unwrap();
        let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (handshakes, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
        let (done, errors) = (Arc::clone(&handshakes), Arc::clone(&failed));
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((client, _)) = listener.accept().await {
                    let (acceptor, done, errors) = (acceptor.clone(), Arc::clone(&done), Arc::clone(&errors));
                    tokio::spawn(async move {
                        let mut tls = match acceptor.accept(client).await {
                            Ok(tls) => tls,
                            Err(e) => return errors.lock().unwrap().push(e.to_string()),
                        };
                        done.fetch_add(1, Ordering::SeqCst);
                        let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    });
                }
            });
        });
        Self { port, handshakes, failed }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Connections that completed the TLS handshake.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    /// Why each failed handshake failed.
    pub fn failed(&self) -> Vec<String> {
        self.failed.lock().unwrap().clone()
    }
}
