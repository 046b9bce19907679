use super::*;

/// The mode `url` resolves to, or the error's text.
fn mode_of(url: &str) -> Result<Mode, String> {
    let (rest, asked) = params::take_tls_params(url).map_err(|e| e.to_string())?;
    let config = tokio_postgres::Config::from_str(&rest).map_err(|e| e.to_string())?;
    decide(&asked, &config).map_err(|e| e.to_string())
}

#[test]
fn each_sslmode_means_what_libpq_says_but_prefer_is_refused() {
    let remote = "postgres://m:pw@db.example/mdm";
    for (query, want) in [
        ("?sslmode=verify-full", Mode::VerifyFull),
        ("?sslmode=verify-ca", Mode::VerifyCa),
        ("?sslmode=require", Mode::Encrypt),
        // libpq: `require` with a CA file checks the chain.
        ("?sslmode=require&sslrootcert=/ca.pem", Mode::VerifyCa),
        ("?sslmode=disable", Mode::Plain),
        // Nothing said: verified TLS off the machine.
        ("", Mode::VerifyFull),
        ("?sslrootcert=system", Mode::VerifyFull),
    ] {
        assert_eq!(mode_of(&format!("{remote}{query}")), Ok(want), "{query}");
    }
    for mode in ["prefer", "allow"] {
        let refused = mode_of(&format!("{remote}?sslmode={mode}")).expect_err("refused");
        assert!(refused.contains("falls back to plaintext"), "{refused}");
        assert!(refused.contains("sslmode=verify-full"), "{refused}");
        assert!(!refused.contains("pw"), "{refused}");
    }
    let typo = mode_of(&format!("{remote}?sslmode=verify_full")).expect_err("refused");
    assert!(typo.contains("sslmode must be"), "{typo}");
    // The keyword form reads the same.
    assert_eq!(
        mode_of("host=db.example sslmode=verify-ca sslrootcert='/my ca.pem'"),
        Ok(Mode::VerifyCa)
    );
    assert_eq!(mode_of("host=db.example user=m"), Ok(Mode::VerifyFull));
}

#[test]
fn loopback_keeps_plaintext_unless_tls_is_asked_for() {
    for url in [
        "postgres://m@localhost/mdm",
        "postgres://m@127.0.0.1:5433/mdm",
        "postgres://m@[::1]/mdm",
        "host=127.8.9.10 user=m",
        // The address decides where the bytes go.
        "postgres://m@db.example/mdm?hostaddr=127.0.0.1",
    ] {
        assert_eq!(mode_of(url), Ok(Mode::Plain), "{url}");
    }
    assert_eq!(
        mode_of("postgres://m@localhost/mdm?sslrootcert=/ca.pem"),
        Ok(Mode::VerifyFull)
    );
    assert_eq!(
        mode_of("postgres://m@localhost/mdm?sslmode=require"),
        Ok(Mode::Encrypt)
    );
    // One remote host among loopback ones is remote.
    assert_eq!(
        mode_of("postgres://m@localhost,db.example/mdm"),
        Ok(Mode::VerifyFull)
    );
    assert_eq!(
        mode_of("postgres://m@localhost/mdm?hostaddr=10.1.2.3"),
        Ok(Mode::VerifyFull)
    );
}

#[test]
fn a_unix_socket_carries_no_tls_whatever_is_asked() {
    for query in [
        "",
        "&sslmode=verify-full",
        "&sslmode=prefer",
        "&sslmode=require",
    ] {
        let url = format!("postgres://m@/mdm?host=/run/postgresql{query}");
        assert_eq!(mode_of(&url), Ok(Mode::Plain), "{url}");
    }
    // A socket listed with a TCP host cannot share its TLS.
    let mixed = mode_of("host=/run/postgresql,db.example user=m").expect_err("refused");
    assert!(mixed.contains("Unix socket"), "{mixed}");
    assert_eq!(
        mode_of("host=/run/postgresql,db.example user=m sslmode=disable"),
        Ok(Mode::Plain)
    );
}

#[test]
fn a_missing_or_empty_ca_file_is_named() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("none.pem");
    let missing = missing.to_string_lossy();
    let Err(e) = trusted_roots(Some(&missing)) else {
        panic!("a missing file is no CA")
    };
    assert!(
        e.to_string()
            .contains(&format!("cannot read sslrootcert {missing}")),
        "{e}"
    );
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap_or_else(|e| panic!("{e}"));
    let empty = empty.to_string_lossy();
    let Err(e) = trusted_roots(Some(&empty)) else {
        panic!("an empty file is no CA")
    };
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
}
