//! A minimal binary that only serves the sandbox's helper modes, so the crate's own integration
//! tests can run real sandboxes (`OCIBUILD_SANDBOX_HELPER=$CARGO_BIN_EXE_sandbox-helper`).
fn main() {
    ocibuild_sandbox::helper::dispatch();
    eprintln!("sandbox-helper: expected a helper mode as the first argument");
    std::process::exit(2);
}
