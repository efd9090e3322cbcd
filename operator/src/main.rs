//! The Coffer operator. Its CRDs and reconcilers arrive with the operator issue; until then
//! the binary only reports that it is not yet available, so nobody mistakes it for a working
//! controller.

fn main() {
    eprintln!(
        "coffer-operator {}: not yet implemented",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
