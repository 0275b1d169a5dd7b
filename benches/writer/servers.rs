//! The servers the benchmark talks to: the database server and the fault
//! proxy are the test suite's own (`tests/it/support/{db,fault_proxy}.rs`,
//! included by path), the instant-ack stub is `benches/support/stub_mongo.rs`.

#[allow(dead_code)]
#[path = "../../tests/it/support/db.rs"]
mod db;
#[allow(dead_code)]
#[path = "../../tests/it/support/fault_proxy.rs"]
mod fault_proxy;

#[path = "../support/stub_mongo.rs"]
mod stub_mongo;

use fault_proxy::socket_addr_of;
pub use fault_proxy::FaultProxy;
pub use stub_mongo::StubMongo;

/// Base URI of the database server, started on first use (`MONGODB_TEST_URI`,
/// else `mongod` on PATH, else FerretDB: see `tests/it/support/db.rs`).
/// Blocks, possibly minutes on a cold Go build.
pub fn database_uri() -> String {
    db::server_uri().to_owned()
}

/// The fault proxy in front of the server at `uri`.
pub async fn proxy_to(uri: &str) -> FaultProxy {
    FaultProxy::start(socket_addr_of(uri)).await
}
