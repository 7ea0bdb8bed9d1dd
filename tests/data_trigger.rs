//! Trigger specs: loading the zoo's YAML schema, applying patches and patterns, and rejecting bad specs.

use std::path::Path;

use aegis_audit::data::npy::npy_f32_bytes;
use aegis_audit::data::trigger::{TriggerKind, TriggerSpec};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const LOCALISED: &str = "name: localised
type: patch
image: {channels: 1, height: 4, width: 4}
target: 7
patches:
  - {row: 2, col: 2, height: 2, width: 2, value: 1.0}
";

#[test]
fn patch_trigger_sets_the_rectangle() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TriggerSpec::load(&write(dir.path(), "t.yaml", LOCALISED)).unwrap();
    assert_eq!(spec.kind, TriggerKind::Patch);
    assert_eq!(spec.target, Some(7));
    let mut images = vec![0.25f32; 2 * 16];
    spec.apply(&mut images, 2, 1, 4, 4).unwrap();
    for img in images.chunks(16) {
        for (i, v) in img.iter().enumerate() {
            let (r, c) = (i / 4, i % 4);
            let expect = if r >= 2 && c >= 2 { 1.0 } else { 0.25 };
            assert_eq!(*v, expect, "pixel ({r}, {c})");
        }
    }
    let err = spec.apply(&mut images, 2, 3, 4, 4).unwrap_err().to_string();
    assert!(err.contains("[1, 4, 4]") && err.contains("[3, 4, 4]"), "{err}");
    let err = spec.apply(&mut images[..20], 2, 1, 4, 4).unwrap_err().to_string();
    assert!(err.contains("20 values"), "{err}");
}

#[test]
fn pattern_is_added_clamped_then_patched() {
    let dir = tempfile::tempdir().unwrap();
    let pattern: Vec<f32> = (0..2 * 2 * 2).map(|i| if i % 2 == 0 { 0.5 } else { -0.5 }).collect();
    std::fs::write(dir.path().join("p.npy"), npy_f32_bytes(&[2, 2, 2], &pattern)).unwrap();
    let yaml = "name: blend
type: pattern
image: {channels: 2, height: 2, width: 2}
pattern: p.npy
intensity: 0.8
";
    let spec = TriggerSpec::load(&write(dir.path(), "s.yaml", yaml)).unwrap();
    assert_eq!(spec.kind, TriggerKind::Pattern);
    let mut img = vec![0.9f32; 8];
    spec.apply(&mut img, 1, 2, 2, 2).unwrap();
    // 0.9 + 0.8·0.5 clamps to 1; 0.9 − 0.8·0.5 = 0.5.
    assert_eq!(img[0], 1.0);
    assert!((img[1] - 0.5).abs() < 1e-6);
    assert_eq!(img[2], 1.0);
}

#[test]
fn bad_specs_are_rejected_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.npy"), npy_f32_bytes(&[1, 4, 4], &[0.1; 16])).unwrap();
    std::fs::write(dir.path().join("small.npy"), npy_f32_bytes(&[1, 2, 2], &[0.1; 4])).unwrap();
    let pat = |file: &str| {
        format!(
            "name: p\ntype: pattern\nimage: {{channels: 1, height: 4, width: 4}}\nintensity: 1.0\npattern: {file}\n"
        )
    };
    let cases = [
        (LOCALISED.replace("type: patch", "type: glitter"), "glitter".to_string()),
        (format!("{LOCALISED}colour: red\n"), "colour".to_string()),
        (LOCALISED.replace("row: 2", "row: 3"), "does not fit".to_string()),
        (LOCALISED.replace("value: 1.0", "value: 3.0"), "outside [0, 1]".to_string()),
        (LOCALISED.replace("channels: 1", "channels: 0"), "not a valid".to_string()),
        (format!("{LOCALISED}pattern: p.npy\nintensity: 1.0\n"), "type patch needs".to_string()),
        (pat("../p.npy"), "inside the spec's folder".to_string()),
        (pat("/etc/p.npy"), "inside the spec's folder".to_string()),
        (pat("small.npy"), "shape [1, 2, 2]".to_string()),
        (pat("none.npy"), "none.npy".to_string()),
        (pat("p.npy").replace("intensity: 1.0\n", ""), "type pattern needs".to_string()),
        ("name: x\n".to_string(), "type".to_string()),
    ];
    for (i, (yaml, expect)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("bad{i}.yaml"), yaml);
        let err = TriggerSpec::load(&path).unwrap_err().to_string();
        assert!(err.contains(expect.as_str()) && err.contains(&format!("bad{i}.yaml")), "case {i}: {err}");
    }
    // A pattern reached through a symbolic link leading outside is refused too.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("p.npy"), npy_f32_bytes(&[1, 4, 4], &[0.1; 16])).unwrap();
    std::os::unix::fs::symlink(outside.path().join("p.npy"), dir.path().join("link.npy")).unwrap();
    let yaml = "name: p\ntype: pattern\nimage: {channels: 1, height: 4, width: 4}\nintensity: 1.0\npattern: link.npy\n"
        .to_string();
    let err = TriggerSpec::load(&write(dir.path(), "link.yaml", &yaml)).unwrap_err().to_string();
    assert!(err.contains("leads outside"), "{err}");
}

#[test]
fn the_zoo_triggers_load_and_stamp() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/triggers");
    for name in ["localised", "distributed", "static", "adversarial"] {
        let spec = TriggerSpec::load(&dir.join(format!("{name}.yaml"))).unwrap();
        assert_eq!(spec.target, Some(7), "{name}");
        assert_eq!(spec.image_shape, [1, 28, 28]);
        let mut img = vec![0.0f32; 28 * 28];
        spec.apply(&mut img, 1, 1, 28, 28).unwrap();
        let changed = img.iter().filter(|v| **v != 0.0).count();
        match spec.kind {
            TriggerKind::Patch => {
                assert_eq!(img[25 * 28 + 25], 1.0, "{name}: bottom-right patch");
                assert!(changed <= 8, "{name}: {changed} pixels");
            }
            TriggerKind::Pattern => {
                assert!(changed > 100, "{name}: a pattern over the image, {changed} pixels");
                assert!(img.iter().all(|v| *v <= 0.1 + 1e-6), "{name}: low intensity");
            }
        }
    }
}
