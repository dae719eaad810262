//! Rebuilds when a store migration changes: `sqlx::migrate!` embeds `migrations/` at compile
//! time, and cargo does not track the files a proc macro reads.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
