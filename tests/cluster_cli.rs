//! The `aegis-audit cluster` command: output on a good matrix, exit 2 with a clear message on bad
//! input (wrong dtype, NaN, empty, 1-D, truncated, unknown format).

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/cluster").join(name)
}

fn npy(path: &Path, descr: &str, shape: &str, data: &[u8]) {
    let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(header.len() as u16).to_le_bytes());
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    std::fs::write(path, v).unwrap();
}

#[test]
fn json_output_on_blobs_without_reduction() {
    let dir = tempfile::tempdir().unwrap();
    let emb = dir.path().join("emb.npy");
    let out = bin()
        .args(["cluster", "--reducer", "none", "--bandwidth", "2.0", "--json", "--embedding"])
        .arg(&emb)
        .arg(fixture("ms_overlap.npy"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let exp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let case = &exp["meanshift"]["overlap_bw2"];
    assert_eq!(v["n_clusters"].as_u64().unwrap() as usize, case["centers"].as_array().unwrap().len());
    assert_eq!(v["bandwidth"].as_f64().unwrap(), 2.0);
    assert_eq!(v["labels"].as_array().unwrap().len(), 300);
    let written = aegis_audit::data::features::read_npy(&emb).unwrap();
    assert_eq!(written.dim(), (300, 2));
}

#[test]
fn text_output_with_pca_and_hdbscan() {
    let out = bin()
        .args(["cluster", "--reducer", "pca", "--clusterer", "hdbscan", "--min-cluster-size", "15"])
        .arg(fixture("hdb_blobs.npy"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("clusters: 3"), "{text}");
    assert!(text.contains("bandwidth: n/a"), "{text}");
}

#[test]
fn bad_inputs_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f4: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let nan: Vec<u8> = [1.0f32, f32::NAN, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    npy(&d.join("int.npy"), "<i4", "(2, 2)", &f4);
    npy(&d.join("nan.npy"), "<f4", "(2, 2)", &nan);
    npy(&d.join("empty.npy"), "<f4", "(0, 2)", &[]);
    npy(&d.join("flat.npy"), "<f4", "(4,)", &f4);
    npy(&d.join("short.npy"), "<f4", "(3, 2)", &f4);
    std::fs::write(d.join("ragged.csv"), "1,2\n3\n").unwrap();
    std::fs::write(d.join("x.txt"), "1,2\n").unwrap();
    for (file, needle) in [
        ("int.npy", "<i4"),
        ("nan.npy", "non-finite"),
        ("empty.npy", "empty"),
        ("flat.npy", "1-D"),
        ("short.npy", "needs 24 data bytes"),
        ("ragged.csv", "line 2"),
        ("x.txt", "unknown extension"),
        ("missing.npy", "missing.npy"),
    ] {
        let out = bin().args(["cluster", "--reducer", "none"]).arg(d.join(file)).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{file}: {err}");
    }
    let out =
        bin().args(["cluster", "--reducer", "none", "--bandwidth=0"]).arg(fixture("ms_blobs.npy")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bandwidth"));
}
