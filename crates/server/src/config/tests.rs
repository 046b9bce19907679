//! Tests of the configuration layers.

#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn flags_beat_the_file_which_beats_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mamori.toml"),
        "admin_addr = \"127.0.0.1:9444\"\npublic_url = \"https://file.example\"\norganization = \"Acme\"\n",
    )
    .unwrap();
    let args = ServeArgs {
        data_dir: Some(dir.path().to_path_buf()),
        public_url: Some("https://flag.example".into()),
        ..ServeArgs::default()
    };
    let c = Config::resolve(&args).unwrap();
    assert_eq!(c.admin_addr, "127.0.0.1:9444".parse().unwrap());
    assert_eq!(c.public_url.as_deref(), Some("https://flag.example"));
    assert_eq!(c.organization, "Acme");
    assert_eq!(c.device_addr, "0.0.0.0:8443".parse().unwrap());
    assert!(c.allow_single_des);
}

#[test]
fn unknown_keys_and_half_tls_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "admin_adr = \"127.0.0.1:1\"\n").unwrap();
    let args = ServeArgs {
        config: Some(p.clone()),
        ..ServeArgs::default()
    };
    let err = Config::resolve(&args).unwrap_err();
    assert!(format!("{err:#}").contains("admin_adr"), "{err:#}");
    std::fs::write(&p, "tls_cert = \"/x.pem\"\n").unwrap();
    assert!(Config::resolve(&args).is_err());
}

#[test]
fn environment_variables_feed_the_flags() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }
    // clap reads MAMORI_* for each flag; the flag itself wins.
    let cli = Cli::try_parse_from(["mamori", "--admin-addr", "127.0.0.1:7000"]).unwrap();
    assert_eq!(
        cli.serve.admin_addr,
        Some("127.0.0.1:7000".parse().unwrap())
    );
    let envs = known_env();
    for v in [
        "MAMORI_DATA_DIR",
        "MAMORI_DEVICE_ADDR",
        "MAMORI_ADMIN_ADDR",
        "MAMORI_PUBLIC_URL",
    ] {
        assert!(envs.iter().any(|e| e == v), "{v}");
    }
}

#[test]
fn the_time_zone_is_asia_tokyo_unless_set_and_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let args = |zone: Option<&str>| ServeArgs {
        data_dir: Some(dir.path().to_path_buf()),
        time_zone: zone.map(str::to_owned),
        ..ServeArgs::default()
    };
    assert_eq!(
        Config::resolve(&args(None)).unwrap().time_zone,
        "Asia/Tokyo"
    );
    assert_eq!(
        Config::resolve(&args(Some("Europe/London")))
            .unwrap()
            .time_zone,
        "Europe/London"
    );
    let err = Config::resolve(&args(Some("Mars/Olympus_Mons"))).unwrap_err();
    assert!(format!("{err:#}").contains("unknown time zone"), "{err:#}");
}

#[test]
fn the_database_is_embedded_unless_a_postgres_url_is_given() {
    assert_eq!(Database::parse(None).unwrap(), Database::Embedded);
    assert_eq!(
        Database::parse(Some(" ".into())).unwrap(),
        Database::Embedded
    );
    let pg = Database::parse(Some(
        "postgres://mamori:s3cret@db.internal:5432/mamori".into(),
    ))
    .unwrap();
    assert!(matches!(pg, Database::Postgres(_)));
    // The password is in neither the description nor the debug form.
    assert_eq!(pg.describe(), "PostgreSQL at db.internal:5432/mamori");
    assert!(!format!("{pg:?}").contains("s3cret"));
    let err = Database::parse(Some("mysql://db/mamori".into())).unwrap_err();
    assert!(err.to_string().contains("postgres://"), "{err}");
    // The file's setting is used when no flag or variable gives one.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mamori.toml"),
        "database_url = \"postgres://mamori@/mamori?host=/run/postgresql\"\n",
    )
    .unwrap();
    let c = Config::resolve(&ServeArgs {
        data_dir: Some(dir.path().to_path_buf()),
        ..ServeArgs::default()
    })
    .unwrap();
    assert_eq!(c.database.describe(), "PostgreSQL at /mamori");
}

#[test]
fn the_inventory_refresh_is_daily_unless_set_and_zero_turns_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let args = |hours: Option<u32>| ServeArgs {
        data_dir: Some(dir.path().to_path_buf()),
        inventory_refresh_hours: hours,
        ..ServeArgs::default()
    };
    let daily = Config::resolve(&args(None)).unwrap().inventory_refresh;
    assert_eq!(daily, Some(time::Duration::hours(24)));
    std::fs::write(
        dir.path().join("mamori.toml"),
        "inventory_refresh_hours = 0\n",
    )
    .unwrap();
    assert_eq!(
        Config::resolve(&args(None)).unwrap().inventory_refresh,
        None
    );
    assert_eq!(
        Config::resolve(&args(Some(6))).unwrap().inventory_refresh,
        Some(time::Duration::hours(6))
    );
    let err = Config::resolve(&args(Some(721))).unwrap_err();
    assert!(
        format!("{err:#}").contains("inventory_refresh_hours"),
        "{err:#}"
    );
}
