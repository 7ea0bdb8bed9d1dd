//! One test per validation rule of the embed/cluster parameter structs, and bad matrices.

use aegis_audit::cluster::{estimate_bandwidth, AffinityPropagation, Hdbscan, MeanShift};
use aegis_audit::embed::{Pca, Tsne};
use aegis_audit::fit_input::FitError;
use ndarray::{array, Array2};

fn small() -> Array2<f64> {
    Array2::from_shape_fn((12, 3), |(i, j)| ((i * 5 + j * 3) % 7) as f64)
}

fn param_name(e: FitError) -> &'static str {
    match e {
        FitError::InvalidParam { name, .. } => name,
        other => panic!("expected InvalidParam, got {other}"),
    }
}

#[test]
fn pca_rejects_zero_components_and_one_sample() {
    assert_eq!(param_name(Pca::params(0).fit(&small()).unwrap_err()), "n_components");
    let err = Pca::params(2).fit(&array![[1.0, 2.0]]).unwrap_err();
    assert!(matches!(err, FitError::TooFewSamples { got: 1, .. }), "{err}");
}

#[test]
fn pca_caps_components_at_min_dimension() {
    let pca = Pca::params(150).fit(&small()).unwrap();
    assert_eq!(pca.components().nrows(), 3);
    let err = pca.transform(&array![[1.0, 2.0]]).unwrap_err();
    assert!(matches!(err, FitError::FeatureMismatch { expected: 3, got: 2 }), "{err}");
}

#[test]
fn tsne_rules() {
    let x = small();
    assert_eq!(param_name(Tsne::params().perplexity(0.0).fit(&x).unwrap_err()), "perplexity");
    assert_eq!(param_name(Tsne::params().perplexity(12.0).fit(&x).unwrap_err()), "perplexity");
    assert_eq!(param_name(Tsne::params().perplexity(3.0).angle(1.5).fit(&x).unwrap_err()), "angle");
    assert_eq!(param_name(Tsne::params().perplexity(3.0).max_iter(100).fit(&x).unwrap_err()), "max_iter");
    assert_eq!(
        param_name(Tsne::params().perplexity(3.0).early_exaggeration(0.5).fit(&x).unwrap_err()),
        "early_exaggeration"
    );
    assert_eq!(
        param_name(Tsne::params().perplexity(3.0).learning_rate(Some(-1.0)).fit(&x).unwrap_err()),
        "learning_rate"
    );
}

#[test]
fn non_finite_and_empty_inputs_are_errors() {
    let mut x = small();
    x[[4, 1]] = f64::NAN;
    assert!(matches!(Pca::params(2).fit(&x).unwrap_err(), FitError::NonFinite { row: 4, col: 1 }));
    assert!(matches!(MeanShift::params().fit(&x).unwrap_err(), FitError::NonFinite { row: 4, col: 1 }));
    let empty = Array2::<f64>::zeros((0, 2));
    assert!(matches!(Hdbscan::params(5).fit(&empty).unwrap_err(), FitError::Empty { .. }));
    assert!(matches!(Tsne::params().fit(&empty).unwrap_err(), FitError::Empty { .. }));
}

#[test]
fn cluster_rules() {
    let x = small();
    let name = |e: FitError| match e {
        FitError::InvalidParam { name, .. } => name,
        other => panic!("expected InvalidParam, got {other}"),
    };
    assert_eq!(name(MeanShift::params().bandwidth(Some(0.0)).fit(&x).unwrap_err()), "bandwidth");
    assert_eq!(name(Hdbscan::params(1).fit(&x).unwrap_err()), "min_cluster_size");
    assert_eq!(name(Hdbscan::params(5).min_samples(Some(0)).fit(&x).unwrap_err()), "min_samples");
    assert!(matches!(Hdbscan::params(20).fit(&x).unwrap_err(), FitError::TooFewSamples { needed: 20, got: 12, .. }));
    assert_eq!(name(AffinityPropagation::params().damping(1.0).fit(&x).unwrap_err()), "damping");
    assert_eq!(name(estimate_bandwidth(&x, 1.5, None, 0).unwrap_err()), "quantile");
    assert_eq!(name(estimate_bandwidth(&x, 0.3, Some(0), 0).unwrap_err()), "n_samples");
}

#[test]
fn identical_points_give_zero_bandwidth_error() {
    let x = Array2::from_elem((10, 2), 1.0);
    assert!(matches!(MeanShift::params().fit(&x).unwrap_err(), FitError::ZeroBandwidth { .. }));
}

#[test]
fn seeded_bandwidth_subsample_is_reproducible() {
    let x = Array2::from_shape_fn((200, 2), |(i, j)| ((i * 37 + j * 11) % 101) as f64);
    let a = estimate_bandwidth(&x, 0.3, Some(50), 7).unwrap();
    let b = estimate_bandwidth(&x, 0.3, Some(50), 7).unwrap();
    let c = estimate_bandwidth(&x, 0.3, Some(50), 8).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}
