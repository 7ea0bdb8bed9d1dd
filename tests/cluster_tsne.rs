//! t-SNE against scikit-learn: same input and perplexity, final KL divergence within 5% of
//! scikit-learn's `kl_divergence_`, and mean shift on the embedding finds the known groups, as
//! scikit-learn's pipeline does (fixture from `scripts/gen_cluster_fixtures.py`).

use std::path::PathBuf;

use aegis_audit::cluster::MeanShift;
use aegis_audit::data::features::read_npy;
use aegis_audit::embed::Tsne;
use serde_json::Value;

#[test]
fn tsne_kl_and_cluster_count_match_sklearn() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/cluster");
    let exp: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let case = &exp["tsne"];
    let x = read_npy(&dir.join(case["input"].as_str().unwrap())).unwrap();
    let perplexity = case["perplexity"].as_f64().unwrap();
    let emb = Tsne::params().perplexity(perplexity).seed(0).fit(&x).unwrap();
    assert_eq!(emb.points.dim(), (x.nrows(), 2));
    assert_eq!(emb.learning_rate, case["learning_rate"].as_f64().unwrap());
    let want = case["kl_divergence"].as_f64().unwrap();
    let rel = (emb.kl_divergence - want).abs() / want;
    assert!(rel <= 0.05, "KL {} vs scikit-learn {want} ({:.1}%)", emb.kl_divergence, rel * 100.0);

    let bw = case["meanshift_bandwidth"].as_f64().unwrap();
    let fit = MeanShift::params().bandwidth(Some(bw)).fit(&emb.points).unwrap();
    let groups = case["groups"].as_u64().unwrap() as usize;
    assert_eq!(case["meanshift_n_clusters"].as_u64().unwrap() as usize, groups);
    assert_eq!(fit.centers.nrows(), groups, "mean shift on our t-SNE output");
    // Each known group (sample i belongs to group i % groups) is one cluster.
    for i in 0..x.nrows() {
        assert_eq!(fit.labels[i], fit.labels[i % groups], "sample {i}");
    }
}

#[test]
fn tsne_is_deterministic_and_rejects_bad_perplexity() {
    let x = ndarray::Array2::from_shape_fn((30, 4), |(i, j)| ((i * 13 + j * 7) % 17) as f64);
    let a = Tsne::params().perplexity(5.0).fit(&x).unwrap();
    let b = Tsne::params().perplexity(5.0).fit(&x).unwrap();
    assert_eq!(a.points, b.points);
    assert_eq!(a.kl_divergence, b.kl_divergence);
    let err = Tsne::params().perplexity(30.0).fit(&x).unwrap_err().to_string();
    assert!(err.contains("perplexity"), "{err}");
}
