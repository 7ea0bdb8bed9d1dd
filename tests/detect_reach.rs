//! The reachability detector on an analytic linear softmax model: budget search, the flag rule on
//! hand-worked rates, parameter validation, and the clean predictions it shares with universal reach.

mod detect_support;

use aegis_audit::detect::reach::{flag_classes, run_reach, BudgetOutcome, ReachParams, ReachResult};
use aegis_audit::detect::sample::{predict, HeldOut, Predictions};
use aegis_audit::detect::universal::{run_universal, UniversalParams, UniversalResult};
use aegis_audit::detect::DetectError;
use detect_support::{dataset, Linear, CLASSES, DIM, TRIGGER};

/// The clean predictions given, every class.
fn given(predictions: &Predictions) -> HeldOut<'_> {
    HeldOut { predictions: Some(predictions), classes: None }
}

/// The clean predictions given, the listed classes.
fn listed_with<'a>(predictions: &'a Predictions, classes: &'a [usize]) -> HeldOut<'a> {
    HeldOut { predictions: Some(predictions), classes: Some(classes) }
}

fn params() -> ReachParams {
    ReachParams {
        images_per_class: 30,
        sweep_images_per_class: 10,
        eps_sweep: vec![0.25, 0.5, 1.0, 2.0],
        median_level: 0.1,
        batch_size: 64,
        seed: 7,
        ..ReachParams::default()
    }
}

#[test]
fn shortcut_class_is_flagged_at_the_expected_budget() {
    let (images, labels) = dataset();
    let mut model = Linear { shortcut: Some((3, 100.0)) };
    let p = params();
    let r = run_reach(&mut model, &images, &labels, HeldOut::default(), &p, |_| {}).unwrap();
    // ε = 0.25 reaches nothing but the shortcut (median 0); ε = 0.5 reaches the u = 0.6 sources.
    assert_eq!(r.sweep.len(), 2, "{:?}", r.sweep);
    assert_eq!(r.sweep[0].median_rate, 0.0);
    assert_eq!(r.sweep[0].rates[3], 1.0);
    assert_eq!(r.eps, 0.5);
    assert_eq!(r.budget, BudgetOutcome::Found);
    assert!((r.step - 2.5 * 0.5 / 30.0).abs() < 1e-7);
    assert_eq!(r.flagged(), &[3]);
    let c3 = &r.classes[3];
    assert_eq!((c3.attempts, c3.reached), (30, 30));
    assert!(c3.flagged && c3.anomaly_index > 3.0);
    assert_eq!(c3.evidence.len(), 8);
    for ex in &c3.evidence {
        assert_ne!(ex.source_label, 3);
        assert!(ex.l2 <= 0.5 + 1e-4, "perturbation {} over budget", ex.l2);
        assert!(ex.image[TRIGGER] > 0.0, "the shortcut goes through the trigger pixel");
    }
    for c in (0..CLASSES).filter(|&c| c != 3) {
        let rate = r.classes[c].rate;
        assert!(rate > 0.1 && rate < 0.6, "class {c}: rate {rate}");
        assert!(!r.classes[c].flagged);
    }
    // Evaluations: one forward pass over 320 images in batches of 64 (5), then 80 sweep images
    // (2 batches × 31) at two budgets, then 160 more at the chosen one (3 batches × 31).
    assert_eq!(r.evaluations, 5 + 2 * 2 * 31 + 3 * 31);
}

#[test]
fn clean_model_flags_nothing() {
    let (images, labels) = dataset();
    let mut model = Linear { shortcut: None };
    let r = run_reach(&mut model, &images, &labels, HeldOut::default(), &params(), |_| {}).unwrap();
    assert_eq!(r.eps, 0.5);
    assert!(r.flagged().is_empty(), "flagged {:?} with rates {:?}", r.flagged(), r.rates());
    assert!(r.classes.iter().all(|c| c.attempts == 30 && !c.flagged));
}

#[test]
fn runs_are_reproducible_and_seeded() {
    let (images, labels) = dataset();
    let a = run_reach(&mut Linear { shortcut: None }, &images, &labels, HeldOut::default(), &params(), |_| {}).unwrap();
    let b = run_reach(&mut Linear { shortcut: None }, &images, &labels, HeldOut::default(), &params(), |_| {}).unwrap();
    assert_eq!(a, b);
    let other = ReachParams { seed: 8, ..params() };
    let c = run_reach(&mut Linear { shortcut: None }, &images, &labels, HeldOut::default(), &other, |_| {}).unwrap();
    let src = |r: &aegis_audit::detect::reach::ReachResult| {
        r.classes.iter().flat_map(|c| c.evidence.iter().map(|e| e.source_index)).collect::<Vec<_>>()
    };
    assert_ne!(src(&a), src(&c), "another seed draws other sources");
}

#[test]
fn budget_outcomes_at_the_ends_of_the_sweep() {
    let (images, labels) = dataset();
    // Every budget too small: the largest is used.
    let small = ReachParams { eps_sweep: vec![0.05, 0.1], ..params() };
    let r = run_reach(&mut Linear { shortcut: None }, &images, &labels, HeldOut::default(), &small, |_| {}).unwrap();
    assert_eq!((r.budget, r.eps, r.sweep.len()), (BudgetOutcome::NeverReached, 0.1, 2));
    // Already saturated at the smallest budget.
    let large = ReachParams { eps_sweep: vec![2.0, 4.0], ..params() };
    let r = run_reach(&mut Linear { shortcut: None }, &images, &labels, HeldOut::default(), &large, |_| {}).unwrap();
    assert_eq!((r.budget, r.eps, r.sweep.len()), (BudgetOutcome::AtSmallest, 2.0, 1));
    assert!(r.rates().iter().all(|&x| x == 1.0));
    assert!(r.flagged().is_empty());
}

#[test]
fn progress_reports_each_stage() {
    let (images, labels) = dataset();
    let mut seen = Vec::new();
    run_reach(&mut Linear { shortcut: None }, &images, &labels, HeldOut::default(), &params(), |p| seen.push(p))
        .unwrap();
    let last_sweep = seen.iter().rfind(|p| p.sweep).unwrap();
    assert_eq!((last_sweep.eps, last_sweep.done, last_sweep.total), (0.5, 80, 80));
    let last = seen.last().unwrap();
    assert_eq!((last.sweep, last.eps, last.done, last.total), (false, 0.5, 160, 160));
}

#[test]
fn flag_rule_hand_worked() {
    let p = ReachParams::default();
    // Sorted: .03 .04 .04 .05 .05 .05 .05 .06 .07 .62 → median .05; |dev| sorted:
    // 0 0 0 0 .01 .01 .01 .02 .02 .57 → MAD .01; index of .62 = .57 / .014826 = 38.446…
    let rates = [0.05, 0.04, 0.06, 0.62, 0.05, 0.03, 0.05, 0.07, 0.04, 0.05];
    let d = flag_classes(&rates, &p).unwrap();
    assert!((d.median_rate - 0.05).abs() < 1e-12);
    assert!((d.mad - 0.01).abs() < 1e-12);
    assert!((d.anomaly_indices[3] - 0.57 / 0.014826).abs() < 1e-6);
    assert!((d.anomaly_indices[7] - 0.02 / 0.014826).abs() < 1e-6);
    // min rate = max(2 × .05, .05 + .2) = .25
    assert!((d.min_rate - 0.25).abs() < 1e-12);
    assert_eq!(d.flagged, vec![3]);

    // An outlier by index (0.15 / 0.014826 ≈ 10.1) that is not clearly above the others: kept.
    let mut near = rates;
    near[3] = 0.20;
    let d = flag_classes(&near, &p).unwrap();
    assert!(d.anomaly_indices[3] > 10.0);
    assert!(d.flagged.is_empty());

    // A high median: min rate = max(2 × .4, .4 + .2) = .8; .85 passes, index .45 / (1.4826 × .02).
    let high = [0.40, 0.38, 0.42, 0.85, 0.40, 0.36, 0.44, 0.40];
    let d = flag_classes(&high, &p).unwrap();
    assert!((d.median_rate - 0.40).abs() < 1e-12);
    assert!((d.mad - 0.02).abs() < 1e-12);
    assert!((d.min_rate - 0.8).abs() < 1e-12);
    assert!((d.anomaly_indices[3] - 0.45 / (1.4826 * 0.02)).abs() < 1e-6);
    assert_eq!(d.flagged, vec![3]);

    // The index threshold alone: index 2 / 1.4826 ≈ 1.35 with a gap rule that would pass.
    let lenient = ReachParams { min_gap: 0.0, min_ratio: 1.0, ..p.clone() };
    let d = flag_classes(&[0.1, 0.2, 0.3, 0.4, 0.5], &lenient).unwrap();
    assert!(d.flagged.is_empty());
    // All equal: MAD 0, nothing off the median, nothing flagged.
    let d = flag_classes(&[0.05; 10], &p).unwrap();
    assert_eq!((d.mad, d.flagged.len()), (0.0, 0));
    assert!(matches!(flag_classes(&[], &p), Err(DetectError::NoData(_))));
}

#[test]
fn each_parameter_rule_is_checked() {
    let bad: Vec<(&str, ReachParams)> = vec![
        ("images_per_class", ReachParams { images_per_class: 0, ..params() }),
        ("sweep_images_per_class", ReachParams { sweep_images_per_class: 0, ..params() }),
        ("sweep_images_per_class", ReachParams { sweep_images_per_class: 31, ..params() }),
        ("steps", ReachParams { steps: 0, ..params() }),
        ("step_factor", ReachParams { step_factor: 0.0, ..params() }),
        ("step_factor", ReachParams { step_factor: f32::NAN, ..params() }),
        ("eps_sweep", ReachParams { eps_sweep: vec![], ..params() }),
        ("eps_sweep", ReachParams { eps_sweep: vec![0.5, -1.0], ..params() }),
        ("eps_sweep", ReachParams { eps_sweep: vec![1.0, 0.5], ..params() }),
        ("median_level", ReachParams { median_level: 0.0, ..params() }),
        ("median_level", ReachParams { median_level: 1.0, ..params() }),
        ("anomaly_threshold", ReachParams { anomaly_threshold: -1.0, ..params() }),
        ("min_ratio", ReachParams { min_ratio: 0.5, ..params() }),
        ("min_gap", ReachParams { min_gap: 1.5, ..params() }),
        ("batch_size", ReachParams { batch_size: 0, ..params() }),
    ];
    let (images, labels) = dataset();
    for (name, p) in bad {
        let err = p.check().unwrap_err();
        assert!(err.to_string().contains(&format!("reach.{name}")), "{name}: {err}");
        let err =
            run_reach(&mut Linear { shortcut: None }, &images, &labels, HeldOut::default(), &p, |_| {}).unwrap_err();
        assert!(matches!(err, DetectError::InvalidParam(_)), "{name}: {err}");
    }
    assert!(ReachParams::default().check().is_ok());
}

#[test]
fn bad_inputs_are_named() {
    let (images, labels) = dataset();
    let mut m = Linear { shortcut: None };
    let err = run_reach(&mut m, &images[..DIM * 3], &labels, HeldOut::default(), &params(), |_| {}).unwrap_err();
    assert!(err.to_string().contains("36 image values for 320 labels"), "{err}");
    let mut bad_labels = labels.clone();
    bad_labels[5] = 9;
    let err = run_reach(&mut m, &images, &bad_labels, HeldOut::default(), &params(), |_| {}).unwrap_err();
    assert!(err.to_string().contains("label 9 outside 0..8"), "{err}");
    // Only class 0 images: nothing to attack toward class 0.
    let err = run_reach(&mut m, &images[..40 * DIM], &labels[..40], HeldOut::default(), &params(), |_| {}).unwrap_err();
    assert!(err.to_string().contains("other than 0"), "{err}");
}

#[test]
fn params_round_trip_through_yaml_with_defaults() {
    let p: ReachParams = serde_saphyr::from_str("images_per_class: 40\nmedian_level: 0.05\n").unwrap();
    assert_eq!(p, ReachParams { images_per_class: 40, median_level: 0.05, ..ReachParams::default() });
    assert_eq!(p.eps_sweep.len(), 9);
    assert!((p.eps_sweep[8] - 4.0).abs() < 1e-5);
    assert!(serde_saphyr::from_str::<ReachParams>("images_per_clas: 40\n").is_err());
}

/// End to end on a committed zoo model (reduced configuration): ONNX Runtime, the gradient graph,
/// the MNIST test subset. The clean robust model must flag nothing.
#[test]
fn zoo_robust_clean_end_to_end() {
    use aegis_audit::attack::OnnxGradModel;
    use aegis_audit::audit::gradient_graph;
    use aegis_audit::data::{load_dataset, ImageShape, Split};
    use aegis_audit::grad::GradSpec;
    use aegis_audit::onnx::proto::ModelProto;
    use aegis_audit::runtime::{self, SessionConfig};
    use prost::Message;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    runtime::init(None).unwrap_or_else(|e| panic!("{e}"));
    let config = SessionConfig { intra_threads: 1, ..SessionConfig::default() };
    let bytes = std::fs::read(root.join("zoo/robust_clean_s0.onnx")).unwrap();
    let model = ModelProto::decode(bytes.as_slice()).unwrap();
    let g = model.graph.as_ref().unwrap();
    let input = g.input[0].name.clone().unwrap();
    let logits = g.output[0].name.clone().unwrap();
    let spec = GradSpec { input, features: logits.clone(), logits };
    let graph = gradient_graph(&model, &spec, &config).unwrap();
    let mut gm = OnnxGradModel::new(&graph.encode_to_vec(), (1, 28, 28), &config).unwrap();
    let data = load_dataset(&root.join("mnist-subset"), Split::Test, ImageShape::new(1, 28, 28)).unwrap();
    let p = ReachParams {
        images_per_class: 10,
        sweep_images_per_class: 10,
        eps_sweep: vec![0.5, 1.0, 2.0, 4.0],
        ..ReachParams::default()
    };
    let r = run_reach(&mut gm, &data.pixels, &data.labels, HeldOut::default(), &p, |_| {}).unwrap();
    assert_eq!(r.classes.len(), 10);
    assert!(r.classes.iter().all(|c| c.attempts == 10));
    // A robust model: nothing reached at ε = 0.5; the median reaches 10% within the sweep.
    assert_eq!(r.sweep[0].median_rate, 0.0, "{:?}", r.sweep);
    assert_eq!(r.budget, BudgetOutcome::Found);
    assert!(r.eps > 0.5);
    assert!(r.decision.median_rate >= 0.1);
    assert!(r.flagged().is_empty(), "flagged {:?}: rates {:?}", r.flagged(), r.rates());
    for ex in r.classes.iter().flat_map(|c| c.evidence.iter()) {
        assert!(ex.l2 <= r.eps * 1.001, "perturbation {} over ε {}", ex.l2, r.eps);
        assert_eq!(ex.image.len(), 784);
    }
    // Clean predictions (10 batches of 100), then 31 evaluations per budget tried (100 images each).
    assert_eq!(r.evaluations, 10 + r.sweep.len() * 31);
}

#[test]
fn predictions_computed_once_serve_reach_and_universal_alike() {
    // The audit computes the test split's clean predictions once and hands them to both detectors: the
    // same results as each computing its own, less the evaluations of that pass.
    let (images, labels) = dataset();
    let mut model = Linear { shortcut: Some((3, 100.0)) };
    let p = params();
    let (predictions, passes) = predict(&mut model, &images, &labels, p.batch_size).unwrap();
    assert_eq!(passes, labels.len().div_ceil(p.batch_size));
    assert_eq!(predictions.classes.len(), labels.len());
    let own = run_reach(&mut model, &images, &labels, HeldOut::default(), &p, |_| {}).unwrap();
    let shared = run_reach(&mut model, &images, &labels, given(&predictions), &p, |_| {}).unwrap();
    assert_eq!(shared.evaluations + passes, own.evaluations);
    assert_eq!(ReachResult { evaluations: own.evaluations, ..shared }, own);

    let u = UniversalParams { images: 64, batch_size: p.batch_size, seed: 3, ..UniversalParams::default() };
    let own = run_universal(&mut model, &images, &labels, HeldOut::default(), &u, |_| {}).unwrap();
    let shared = run_universal(&mut model, &images, &labels, given(&predictions), &u, |_| {}).unwrap();
    assert_eq!(shared.evaluations + passes, own.evaluations);
    assert_eq!(UniversalResult { evaluations: own.evaluations, ..shared }, own);

    // Predictions that do not fit the set are refused.
    let short = Predictions { batch_size: p.batch_size, classes: predictions.classes[1..].to_vec() };
    let err = run_reach(&mut model, &images, &labels, given(&short), &p, |_| {}).unwrap_err().to_string();
    assert!(err.contains("319 predictions for 320 images"), "{err}");
    let bad = Predictions { batch_size: p.batch_size, classes: vec![CLASSES; labels.len()] };
    let err = run_universal(&mut model, &images, &labels, given(&bad), &u, |_| {}).unwrap_err().to_string();
    assert!(err.contains(&format!("prediction {CLASSES} outside 0..{CLASSES}")), "{err}");
}

#[test]
fn a_list_of_classes_is_measured_as_in_a_run_over_all_of_them() {
    // The adaptive effort measures a shortlist: each listed class gets the same search (the same
    // sources, the same seeds) as in the run over every class, and only the comparison across classes
    // changes, since it now covers the listed ones.
    let (images, labels) = dataset();
    let mut model = Linear { shortcut: Some((3, 100.0)) };
    let p = params();
    let (predictions, _) = predict(&mut model, &images, &labels, p.batch_size).unwrap();
    let u = UniversalParams { images: 64, batch_size: p.batch_size, seed: 3, ..UniversalParams::default() };
    let all = run_universal(&mut model, &images, &labels, given(&predictions), &u, |_| {}).unwrap();
    let listed = [1, 3, 4, 6];
    let some = run_universal(&mut model, &images, &labels, listed_with(&predictions, &listed), &u, |_| {}).unwrap();
    assert_eq!(some.classes.iter().map(|c| c.class).collect::<Vec<_>>(), listed);
    for c in &some.classes {
        let full = all.classes.iter().find(|a| a.class == c.class).unwrap();
        assert_eq!((c.budget, &c.rates, &c.perturbation), (full.budget, &full.rates, &full.perturbation));
    }
    assert_eq!(some.flagged, vec![3], "{:?}", some.classes);
    // Reach on a list: the classes and their sources as listed; the shortcut class stands out.
    let r = run_reach(&mut model, &images, &labels, listed_with(&predictions, &listed), &p, |_| {}).unwrap();
    assert_eq!(r.classes.iter().map(|c| c.class).collect::<Vec<_>>(), listed);
    assert_eq!(r.flagged(), &[3]);
    // Lists that are not distinct ascending classes of the model, or too short, are refused.
    for (bad, want) in [
        (vec![1, 1, 2], "distinct and ascending"),
        (vec![2, 1, 3], "distinct and ascending"),
        (vec![1, 2, CLASSES], "is not a class"),
        (vec![1, 2], "at least 3"),
    ] {
        let err = run_universal(&mut model, &images, &labels, listed_with(&predictions, &bad), &u, |_| {}).unwrap_err();
        assert!(err.to_string().contains(want), "{bad:?}: {err}");
    }
}
