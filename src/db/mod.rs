//! Everything that speaks SQL. One `MultiConnection` over SQLite and PostgreSQL; the
//! backend-specific parts live in `connection.rs` and nowhere else.
mod connection;
pub mod schema;
pub mod users;

pub use connection::{
    ConnectionManager, DbConnection, DbPool, build_pool, init_postgres_client_library,
    run_migrations,
};
