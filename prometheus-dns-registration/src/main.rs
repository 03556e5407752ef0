//! prometheus-dns-registration: Route53 records → Prometheus federation targets (skeleton).
fn main() {
    eprintln!("prometheus-dns-registration: not implemented yet");
    std::process::exit(2);
}
