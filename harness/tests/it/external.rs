//! External databases: a run leaves the user's own tables and views alone (issue 13).

use crate::support::*;
use checkers::Validity;
use harness::nemesis::Fault;
use harness::nodes::{Backend, Cluster, NodeOptions};
use harness::run::{run, RunConfig};
use workloads::DesignName;

// ---- 7. external databases keep what is theirs ---------------------------------------

async fn schemas(c: &tokio_postgres::Client) -> Vec<String> {
    let rows = c
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'overbook\\_%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_external_run_leaves_the_users_own_tables_and_views_alone() {
    let logs = TempDir::new("external-logs");
    let owned = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    // The user's database: their own `inventory` and a view on it, in `public`.
    let user = pg(&owned.postgres.direct_url()).await;
    user.batch_execute(
        "CREATE TABLE public.inventory (sku text PRIMARY KEY, count int);
         INSERT INTO public.inventory VALUES ('towel', 12);
         CREATE VIEW public.stock AS SELECT sku, count FROM public.inventory;",
    )
    .await
    .unwrap();
    let before = schemas(&user).await;

    // atomic-reserve uses a table named `inventory` itself.
    let store = TempDir::new("external");
    let cfg = RunConfig {
        store: store.0.clone(),
        backend: Backend::External {
            redis_url: owned.redis.direct_url(),
            postgres_url: owned.postgres.direct_url(),
        },
        ..RunConfig::quick(DesignName::AtomicReserve, vec![Fault::DbLatency], 4)
    };
    let out = run(&cfg).await.unwrap();
    crate::verdict::assert_check_agrees(&out.dir.path);
    assert_eq!(out.results.validity, Validity::Valid, "{:?}", out.results);

    let towels: i32 = user
        .query_one("SELECT count FROM public.stock WHERE sku = 'towel'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(towels, 12, "the user's table and view survive");
    assert_eq!(
        schemas(&user).await,
        before,
        "the run's own schema is gone, no other was touched"
    );
    owned.shutdown().await.unwrap();
}
