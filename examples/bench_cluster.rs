//! Times aegis-audit's t-SNE and mean shift on the NPY inputs that `research/bench_cluster.sh`
//! writes (the same files scikit-learn is timed on) and prints one JSON line per case.
//!
//! Usage: `cargo run --release --example bench_cluster -- DIR`

use std::path::PathBuf;
use std::time::Instant;

use aegis_audit::cluster::MeanShift;
use aegis_audit::data::features::read_npy;
use aegis_audit::embed::Tsne;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: bench_cluster DIR")?);
    for name in ["tsne_1000x150", "tsne_5000x150"] {
        let x = read_npy(&dir.join(format!("{name}.npy")))?;
        let t = Instant::now();
        let emb = Tsne::params().perplexity(30.0).seed(0).fit(&x)?;
        let secs = t.elapsed().as_secs_f64();
        println!("{{\"case\": \"{name}\", \"seconds\": {secs:.4}, \"kl_divergence\": {:.6}}}", emb.kl_divergence);
    }
    let x = read_npy(&dir.join("meanshift_1000x2.npy"))?;
    let t = Instant::now();
    let fit = MeanShift::params().fit(&x)?;
    let secs = t.elapsed().as_secs_f64();
    println!("{{\"case\": \"meanshift_1000x2\", \"seconds\": {secs:.4}, \"n_clusters\": {}}}", fit.centers.nrows());
    Ok(())
}
