//! Parity of mean shift, estimate_bandwidth, HDBSCAN, affinity propagation and PCA with
//! scikit-learn, on fixtures written by `scripts/gen_cluster_fixtures.py` (scikit-learn 1.7.2).

use std::collections::HashMap;
use std::path::PathBuf;

use aegis_audit::cluster::{estimate_bandwidth, AffinityPropagation, Hdbscan, MeanShift};
use aegis_audit::data::features::read_npy;
use aegis_audit::embed::Pca;
use ndarray::Array2;
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/cluster")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(dir().join("expected.json")).expect("fixtures/cluster/expected.json");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["sklearn_version"], "1.7.2");
    v
}

fn input(case: &Value) -> Array2<f64> {
    read_npy(&dir().join(case["input"].as_str().unwrap())).unwrap()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// Asserts the two labelings are equal up to renaming (noise, -1, must stay noise).
fn assert_same_partition(ours: &[i64], theirs: &[i64], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    let mut fwd = HashMap::new();
    let mut back = HashMap::new();
    for (i, (&a, &b)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(a == -1, b == -1, "{what}: noise differs at sample {i}");
        assert_eq!(*fwd.entry(a).or_insert(b), b, "{what}: sample {i} ours {a} theirs {b}");
        assert_eq!(*back.entry(b).or_insert(a), a, "{what}: sample {i} ours {a} theirs {b}");
    }
}

/// Labels renamed by first occurrence (noise, -1, kept): equal partitions give equal vectors.
fn canonical(labels: &[i64]) -> Vec<i64> {
    let mut names = HashMap::new();
    labels
        .iter()
        .map(|&l| {
            let next = names.len() as i64;
            if l == -1 {
                -1
            } else {
                *names.entry(l).or_insert(next)
            }
        })
        .collect()
}

/// Our HDBSCAN labels on `x` with its rows rotated left by `shift` (row `shift` first, so Prim's
/// tree starts there), mapped back to the original row order.
fn hdbscan_rotated(x: &Array2<f64>, mcs: usize, shift: usize) -> Vec<i64> {
    let n = x.nrows();
    let rotated = Array2::from_shape_fn(x.dim(), |(i, j)| x[[(i + shift) % n, j]]);
    let fit = Hdbscan::params(mcs).fit(&rotated).unwrap();
    let mut back = vec![0; n];
    for (i, &l) in fit.labels.iter().enumerate() {
        back[(i + shift) % n] = l;
    }
    back
}

#[test]
fn mean_shift_matches_sklearn() {
    let exp = expected();
    let cases = exp["meanshift"].as_object().unwrap();
    assert!(cases.len() >= 5);
    for (name, case) in cases {
        let x = input(case);
        let bw = case["bandwidth_given"].as_f64();
        let fit = MeanShift::params().bandwidth(bw).fit(&x).unwrap();
        let want_bw = case["bandwidth"].as_f64().unwrap();
        assert!((fit.bandwidth - want_bw).abs() <= 1e-6 * want_bw, "{name}: bandwidth {} vs {want_bw}", fit.bandwidth);
        let labels: Vec<i64> = fit.labels.iter().map(|&l| l as i64).collect();
        assert_same_partition(&labels, &ints(&case["labels"]), name);
        let centers = case["centers"].as_array().unwrap();
        assert_eq!(fit.centers.nrows(), centers.len(), "{name}: cluster count");
        // Same order as scikit-learn (by intensity), so compare row by row.
        for (k, c) in centers.iter().enumerate() {
            for (j, v) in floats(c).iter().enumerate() {
                let d = (fit.centers[[k, j]] - v).abs();
                assert!(d <= 1e-4, "{name}: centre {k}[{j}] = {} vs {v}", fit.centers[[k, j]]);
            }
        }
    }
}

#[test]
fn estimate_bandwidth_matches_sklearn() {
    let exp = expected();
    for case in exp["estimate_bandwidth"].as_array().unwrap() {
        let x = input(case);
        let q = case["quantile"].as_f64().unwrap();
        let want = case["bandwidth"].as_f64().unwrap();
        let got = estimate_bandwidth(&x, q, None, 0).unwrap();
        assert!((got - want).abs() <= 1e-6 * want, "{case}: {got} vs {want}");
    }
}

/// `labels_any_order` holds the distinct partitions scikit-learn itself gives over many row orders
/// (every rotation, 1,000 seeded permutations), mapped back to the original rows and
/// canonicalised. Where it holds one, scikit-learn's partition does not depend on row order and
/// ours must equal it; where it holds several (tied mutual-reachability edges, which scikit-learn
/// sorts with numpy's unstable argsort), ours must be one of them, on the fixture's order and on
/// every rotation of it.
#[test]
fn hdbscan_matches_sklearn() {
    let exp = expected();
    let cases = exp["hdbscan"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let x = input(case);
        let mcs = case["min_cluster_size"].as_u64().unwrap() as usize;
        let what = format!("{} mcs {mcs}", case["input"]);
        let want = ints(&case["labels"]);
        let any_order: Vec<Vec<i64>> = case["labels_any_order"].as_array().unwrap().iter().map(ints).collect();
        assert_eq!(any_order[0], canonical(&want), "{what}: fixture: first partition is the identity order's");

        let fit = Hdbscan::params(mcs).fit(&x).unwrap();
        let again = Hdbscan::params(mcs).fit(&x).unwrap();
        assert_eq!(fit.labels, again.labels, "{what}: not deterministic");
        let ours = canonical(&fit.labels);
        let noise = |l: &[i64]| l.iter().filter(|&&v| v == -1).count();
        assert_eq!(
            (fit.n_clusters as i64, noise(&fit.labels)),
            (want.iter().max().unwrap() + 1, noise(&want)),
            "{what}: (clusters, noise) ours {:?}",
            fit.labels
        );

        if case["input"] == "hdb_moons.npy" {
            // A boundary point bridges the moons with two mutual-reachability edges that tie at
            // its core distance; which moon it joins depends on the tied edges' order, in
            // scikit-learn on numpy's unstable argsort of the row order's MST.
            assert!(any_order.len() > 1, "{what}: scikit-learn's partition no longer depends on row order");
            assert!(any_order.contains(&ours), "{what}: ours {:?} is none of scikit-learn's partitions", fit.labels);
        } else {
            assert_eq!(any_order.len(), 1, "{what}: scikit-learn's partition depends on row order");
            assert_same_partition(&fit.labels, &want, &what);
        }
        for shift in 1..x.nrows() {
            let rotated = canonical(&hdbscan_rotated(&x, mcs, shift));
            assert!(any_order.contains(&rotated), "{what}: rows rotated by {shift}: none of scikit-learn's partitions");
        }
    }
}

#[test]
fn affinity_propagation_matches_sklearn() {
    let exp = expected();
    for case in exp["affinity"].as_array().unwrap() {
        let x = input(case);
        for seed in 0..3 {
            let fit = AffinityPropagation::params().seed(seed).fit(&x).unwrap();
            assert!(fit.converged);
            assert_same_partition(&fit.labels, &ints(&case["labels"]), &case["input"].to_string());
            let centers: Vec<i64> = fit.cluster_centers_indices.iter().map(|&c| c as i64).collect();
            assert_eq!(centers, ints(&case["centers"]));
        }
    }
}

#[test]
fn pca_explained_variance_matches_sklearn() {
    let exp = expected();
    for case in exp["pca"].as_array().unwrap() {
        let x = input(case);
        let k = case["n_components"].as_u64().unwrap() as usize;
        let pca = Pca::params(k).fit(&x).unwrap();
        let want = floats(&case["explained_variance"]);
        assert_eq!(pca.explained_variance().len(), want.len(), "components kept");
        // Components in the null space (variance ~1e-15 of the first, e.g. the 40th of 40
        // centred samples) are rounding noise in both: compared with an absolute floor.
        let floor = 1e-12 * want[0];
        for (g, w) in pca.explained_variance().iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5 * w + floor, "{}: {g} vs {w}", case["input"]);
        }
        let ratio = pca.explained_variance_ratio();
        let want_ratio = floats(&case["explained_variance_ratio"]);
        for (g, w) in ratio.iter().zip(&want_ratio) {
            assert!((g - w).abs() <= 1e-5 * w + 1e-12 * want_ratio[0], "{}: ratio {g} vs {w}", case["input"]);
        }
        // Projections agree up to each component's sign.
        let z = pca.transform(&x).unwrap();
        for (i, row) in case["transform_first_rows"].as_array().unwrap().iter().enumerate() {
            for (j, w) in floats(row).iter().enumerate().take(5) {
                assert!((z[[i, j]].abs() - w).abs() <= 1e-6 * (1.0 + w), "{}: z[{i},{j}]", case["input"]);
            }
        }
    }
}
