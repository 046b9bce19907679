//! A purged person's wrapped data key leaves no copy in what PostgreSQL
//! keeps beside the table: the planner's statistics never sample it.
#![allow(clippy::unwrap_used)]

use mamori_store_pg::PgStore;
use mamori_testkit::pg;

#[tokio::test]
async fn the_planner_keeps_no_sample_of_the_wrapped_keys() {
    let url = pg::shared().fresh_database();
    let store = PgStore::connect(&url).await.unwrap();
    let db = pg::Cluster::database_of(&url);
    let psql = |sql: &str| pg::shared().psql(db, sql).unwrap();
    psql(
        "INSERT INTO people (id, status, created_at, updated_at, sealed, email_index, user_id_index)
         SELECT 'p' || i, 'active', 0, 0, '\\x00', 'e' || i, 'u' || i FROM generate_series(1, 200) i;
         INSERT INTO person_keys (person_id, key_id, wrapped_key)
         SELECT 'p' || i, 'k1', decode(md5(i::text) || md5('x' || i), 'hex')
           FROM generate_series(1, 200) i;
         ANALYZE person_keys;",
    );
    // Other columns are sampled as usual; the wrapped keys are not.
    assert_eq!(
        psql(
            "SELECT count(*) FROM pg_stats WHERE tablename = 'person_keys' AND attname = 'key_id'"
        ),
        "1"
    );
    assert_eq!(
        psql(
            "SELECT count(*) FROM pg_stats WHERE tablename = 'person_keys' AND attname = 'wrapped_key'"
        ),
        "0"
    );
    store.close();
}
