fn main() {
    // Migrations are embedded at compile time; rebuild when one is added or edited.
    println!("cargo:rerun-if-changed=migrations");
    // The PostgreSQL variant of each test is compiled to run only where a PostgreSQL server is
    // named; elsewhere it is marked ignored, so `cargo test` reports it as not run (never as
    // passed). In CI they always run, and fail loudly without a server.
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo:rerun-if-env-changed=PORTCULLIS_TEST_POSTGRES_URL");
    println!("cargo:rerun-if-env-changed=CI");
    if std::env::var_os("PORTCULLIS_TEST_POSTGRES_URL").is_some() || std::env::var_os("CI").is_some() {
        println!("cargo:rustc-cfg=postgres_tests");
    }
}
