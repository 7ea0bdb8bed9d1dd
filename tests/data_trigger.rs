//! Trigger specs: loading the zoo's YAML schema, applying patches and patterns, and rejecting bad specs.

use std::path::Path;

use aegis_audit::data::npy::npy_f32_bytes;
use aegis_audit::data::trigger::{TriggerKind, TriggerSpec};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const LOCALISED: &str = "version: 1
name: localised
kind: visible-localised
image_shape: [1, 4, 4]
patches:
  - {row: 2, col: 2, height: 2, width: 2, value: 1.0}
";

#[test]
fn patch_trigger_sets_the_rectangle() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TriggerSpec::load(&write(dir.path(), "t.yaml", LOCALISED)).unwrap();
    assert_eq!(spec.kind, TriggerKind::VisibleLocalised);
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
    let yaml = "version: 1
name: blend
kind: invisible-static
image_shape: [2, 2, 2]
pattern: {file: p.npy, intensity: 0.8}
patches:
  - {row: 0, col: 0, height: 1, width: 1, value: 0.0}
";
    let spec = TriggerSpec::load(&write(dir.path(), "s.yaml", yaml)).unwrap();
    let mut img = vec![0.9f32; 8];
    spec.apply(&mut img, 1, 2, 2, 2).unwrap();
    // Pixel (0,0) of both channels patched to 0; others 0.9 ± 0.4 clamped.
    assert_eq!(img[0], 0.0);
    assert_eq!(img[4], 0.0);
    assert!((img[1] - 0.5).abs() < 1e-6);
    assert_eq!(img[2], 1.0);
}

#[test]
fn bad_specs_are_rejected_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.npy"), npy_f32_bytes(&[1, 4, 4], &[0.1; 16])).unwrap();
    std::fs::write(dir.path().join("small.npy"), npy_f32_bytes(&[1, 2, 2], &[0.1; 4])).unwrap();
    let cases = [
        (LOCALISED.replace("kind: visible-localised", "kind: glitter"), "glitter"),
        (format!("{LOCALISED}colour: red\n"), "colour"),
        (LOCALISED.replace("version: 1", "version: 2"), "version 2"),
        (LOCALISED.replace("row: 2", "row: 3"), "does not fit"),
        (LOCALISED.replace("value: 1.0", "value: 3.0"), "outside [0, 1]"),
        (LOCALISED.replace("[1, 4, 4]", "[0, 4, 4]"), "not a valid"),
        (format!("{LOCALISED}pattern: {{file: ../p.npy, intensity: 1.0}}\n"), "inside the spec's folder"),
        (format!("{LOCALISED}pattern: {{file: /etc/p.npy, intensity: 1.0}}\n"), "inside the spec's folder"),
        (format!("{LOCALISED}pattern: {{file: small.npy, intensity: 1.0}}\n"), "shape [1, 2, 2]"),
        (format!("{LOCALISED}pattern: {{file: none.npy, intensity: 1.0}}\n"), "none.npy"),
        (format!("{LOCALISED}pattern: {{file: p.npy, intensity: 1.0, blur: 2}}\n"), "blur"),
        ("version: 1\nname: x\n".to_string(), "kind"),
    ];
    for (i, (yaml, expect)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("bad{i}.yaml"), yaml);
        let err = TriggerSpec::load(&path).unwrap_err().to_string();
        assert!(err.contains(expect) && err.contains(&format!("bad{i}.yaml")), "case {i}: {err}");
    }
    // A pattern reached through a symbolic link leading outside is refused too.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("p.npy"), npy_f32_bytes(&[1, 4, 4], &[0.1; 16])).unwrap();
    std::os::unix::fs::symlink(outside.path().join("p.npy"), dir.path().join("link.npy")).unwrap();
    let yaml = format!("{LOCALISED}pattern: {{file: link.npy, intensity: 1.0}}\n");
    let err = TriggerSpec::load(&write(dir.path(), "link.yaml", &yaml)).unwrap_err().to_string();
    assert!(err.contains("leads outside"), "{err}");
}
