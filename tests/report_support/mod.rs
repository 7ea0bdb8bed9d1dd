//! Shared builders for the report tests: realistic reports for each verdict.

use std::collections::BTreeMap;

use aegis_audit::report::{
    AuditReport, ClassDetails, ClassResult, DatasetInfo, EvidenceFile, EvidenceInfo, EvidenceKind, Level, MemoryInfo,
    Method, MethodInfo, ModelInfo, Notification, Precondition, Timings, ToolInfo, Verdict,
};

/// An AEGIS class result; `flagged` classes get 4 clusters and evidence files.
pub fn aegis_class(class: i64, name: &str, flagged: bool) -> ClassResult {
    let (sizes, tr, cl) = if flagged {
        (vec![120, 90, 60, 30], vec![0, 90, 60, 30], vec![120, 0, 0, 0])
    } else {
        (vec![150, 150], vec![80, 70], vec![70, 80])
    };
    ClassResult {
        class,
        name: Some(name.to_string()),
        flagged,
        summary: format!("{} clusters (more than 2 is suspicious)", sizes.len()),
        details: ClassDetails::Aegis {
            decision: "clusters".into(),
            displacement: 5.2,
            displacement_median: 6.4,
            shortcut_index: 1.1,
            shortcut_votes: 0,
            shortcut_threshold: 2.0,
            cluster_flagged: Some(flagged),
            clusters: Some(sizes.len()),
            cluster_sizes: sizes,
            translated_per_cluster: tr,
            clean_per_cluster: cl,
            bandwidth: 0.87,
            max_clusters: 2,
        },
        evidence: if flagged {
            vec![
                EvidenceFile {
                    kind: EvidenceKind::Scatter,
                    path: format!("class_{class}_tsne.png"),
                    caption: format!("t-SNE of class {class}"),
                },
                EvidenceFile {
                    kind: EvidenceKind::ImageGrid,
                    path: format!("class_{class}_cluster_1.png"),
                    caption: "translated images, cluster 1".into(),
                },
            ]
        } else {
            Vec::new()
        },
    }
}

/// A report with the given verdict: `Suspected` flags class 7, `NotApplicable` fails the precondition.
pub fn report(verdict: Verdict) -> AuditReport {
    let mut parameters = BTreeMap::new();
    parameters.insert("seed".to_string(), serde_json::json!(42));
    parameters.insert("pgd.epsilon".to_string(), serde_json::json!(100.0));
    parameters.insert("tsne.perplexity".to_string(), serde_json::json!(30.0));
    let passed = verdict != Verdict::NotApplicable;
    let classes = if passed {
        (0..10).map(|k| aegis_class(k, &format!("digit {k}"), verdict == Verdict::Suspected && k == 7)).collect()
    } else {
        Vec::new()
    };
    AuditReport {
        tool: ToolInfo::default(),
        command_line: vec![
            "aegis-audit".into(),
            "models/mnist robust.onnx".into(),
            "--data".into(),
            "data/mnist".into(),
            "--seed".into(),
            "42".into(),
        ],
        model: ModelInfo {
            path: "models/mnist robust.onnx".into(),
            sha256: "ab".repeat(32),
            size_bytes: 45_000_000,
            linear: false,
            open_dims_fixed: None,
            widened_from: None,
        },
        dataset: DatasetInfo {
            path: "data/mnist".into(),
            format: "idx".into(),
            split: "train".into(),
            images: 60_000,
            classes: 10,
            image_shape: [1, 28, 28],
        },
        method: MethodInfo { method: Method::Aegis, reason: "--method aegis".into() },
        parameters,
        precondition: Some(Precondition {
            epsilon: 2.0,
            steps: 20,
            samples: 200,
            clean_accuracy: 0.99,
            adversarial_accuracy: if passed { 0.71 } else { 0.02 },
            threshold: 0.4,
            passed,
        }),
        classes,
        detectors: Vec::new(),
        fused: None,
        verdict,
        wall_time_s: 123.4,
        timings: Timings { load: 0.5, graph_build: 0.2, translation: 90.0, total: 124.0, ..Timings::default() },
        memory: Some(MemoryInfo {
            limit_bytes: 4 << 30,
            activations_per_image: 20_000,
            bytes_per_image: 160_000,
            sessions: 3,
            images_per_evaluation: 100,
            peak_resident_bytes: Some(400 << 20),
        }),
        evidence: Some(EvidenceInfo { dir: "evidence".into(), index: "index.html".into(), files: Vec::new() }),
        effort: None,
        notifications: vec![Notification {
            level: Level::Warning,
            message: "class 3 has 480 training images, fewer than the 500 asked".into(),
            class: Some(3),
        }],
    }
}
