fn main() {
    // Migrations are embedded at compile time; rebuild when one is added or edited.
    println!("cargo:rerun-if-changed=migrations");
}
