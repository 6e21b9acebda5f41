// `sqlx::migrate!` embeds the files under migrations/ at compile time, but
// Cargo does not know it reads them: without this, a new migration file is
// left out of a build until something else makes it recompile.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
