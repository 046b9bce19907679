//! A cluster's TLS listener ([`super::Cluster::start_tls`]): TCP on
//! 127.0.0.1 at a free port, `ssl=on` with a certificate for `localhost`
//! signed by a throwaway CA, and a `pg_hba.conf` that takes TCP
//! connections over TLS only (the Unix socket stays trusted, for the
//! kit's own `psql`).

use crate::apns::Ca;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// The host name the server's certificate holds.
pub const CERT_HOST: &str = "localhost";

/// The TLS listener of a cluster.
#[derive(Debug)]
pub(super) struct Listener {
    /// Its TCP port on 127.0.0.1.
    pub(super) port: u16,
    /// The CA that signed the server's certificate, PEM.
    pub(super) ca_pem: String,
}

impl Listener {
    /// Picks a free port and writes into `data` (an initialised cluster's
    /// directory) the server's certificate and key, and `pg_hba.conf`.
    /// The key is readable by the cluster's owner only, as PostgreSQL
    /// demands (`postgres` when `as_postgres`).
    pub(super) fn prepare(data: &Path, as_postgres: bool) -> Self {
        let ca = Ca::new("Mamori test PostgreSQL CA");
        let key = KeyPair::generate().expect("generate the server's TLS key");
        let mut params = CertificateParams::new(vec![CERT_HOST.to_owned()])
            .expect("the server certificate's parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, CERT_HOST);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &ca.cert, &ca.key)
            .expect("sign the server's certificate");
        let files = [
            ("server.crt", cert.pem(), 0o644),
            ("server.key", key.serialize_pem(), 0o600),
            (
                "pg_hba.conf",
                // First match wins: TLS over TCP, then nothing else.
                "local all all trust\n\
                 hostssl all all 127.0.0.1/32 trust\n\
                 host all all all reject\n"
                    .to_owned(),
                0o600,
            ),
        ];
        for (name, text, mode) in files {
            let path = data.join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {name}: {e}"));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("chmod {name}: {e}"));
            if as_postgres {
                let owned = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&path)
                    .status()
                    .expect("chown");
                assert!(owned.success(), "chown of {name}");
            }
        }
        // A free port: the system's choice, released for the server (a
        // race with another process is possible, and unlikely).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free TCP port on 127.0.0.1")
            .port();
        Self {
            port,
            ca_pem: ca.pem(),
        }
    }

    /// The server's settings (`-c` pairs) for this listener.
    pub(super) fn settings(&self) -> Vec<String> {
        [
            "listen_addresses=127.0.0.1".to_owned(),
            format!("port={}", self.port),
            "ssl=on".to_owned(),
            "ssl_cert_file=server.crt".to_owned(),
            "ssl_key_file=server.key".to_owned(),
        ]
        .into_iter()
        .flat_map(|s| ["-c".to_owned(), s])
        .collect()
    }
}
