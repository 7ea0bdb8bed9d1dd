//! Hostile files (issue 30): every output option refuses a device, a FIFO, a socket and a folder before
//! any work and leaves it as it was; two outputs that are the same file are refused, and so is an output
//! that is one of the run's inputs (a model, its external-data files, a data file, a report read); every input option
//! refuses a FIFO (without hanging), a link to `/dev/zero` and a folder; headers that promise more data
//! than the file holds are refused before allocation; SIGINT/SIGTERM leave no staging folder, keep the
//! previous report and exit 130/143 with one line; `calibrate` and `decide` refuse duplicated models,
//! duplicated or unknown detectors, empty reports, suspected reports without `--allow-suspected`, and
//! out-of-range numbers; reports respect the umask. No case needs root: FIFOs, sockets and links to
//! `/dev/null` and `/dev/zero` stand for special files (a report is never written to `/dev/null`
//! itself, so the case is safe as root too).

mod cli_support;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cli_support::{assert_refused, root, stderr};

const MODEL: &str = "fixtures/zoo/robust_clean_s0.onnx";
const DATA: &str = "fixtures/mnist-subset";

/// Runs the binary with `args` from the repository root under `umask`; a run that does not end within
/// `limit` is killed and fails the test as a hang (not a timing: every case here ends at once).
fn run(args: &[&str], umask: u32, limit: Duration) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aegis-audit"));
    cmd.current_dir(root()).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: umask is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(umask as libc::mode_t);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("hung: aegis-audit {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn aegis(args: &[&str]) -> Output {
    run(args, 0o022, Duration::from_secs(120))
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo {}", path.display());
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The special files an output path may be: (what, path). Each stays what it was after a refusal.
struct Specials {
    _dir: tempfile::TempDir,
    fifo: PathBuf,
    socket: PathBuf,
    null_link: PathBuf,
    folder: PathBuf,
    _listener: std::os::unix::net::UnixListener,
}

fn specials() -> Specials {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.out");
    mkfifo(&fifo);
    let socket = dir.path().join("socket.out");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let null_link = dir.path().join("null.out");
    std::os::unix::fs::symlink("/dev/null", &null_link).unwrap();
    let folder = dir.path().join("folder.out");
    std::fs::create_dir(&folder).unwrap();
    Specials { fifo, socket, null_link, folder, _dir: dir, _listener: listener }
}

impl Specials {
    fn all(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("a FIFO", self.fifo.clone()),
            ("a socket", self.socket.clone()),
            ("a character device", self.null_link.clone()),
            ("a character device", PathBuf::from("/dev/null")),
            ("a folder", self.folder.clone()),
        ]
    }

    fn unchanged(&self) {
        assert!(std::fs::symlink_metadata(&self.fifo).unwrap().file_type().is_fifo());
        assert!(std::fs::symlink_metadata(&self.socket).unwrap().file_type().is_socket());
        assert!(std::fs::metadata(&self.null_link).unwrap().file_type().is_char_device());
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
        assert_eq!(std::fs::read_dir(&self.folder).unwrap().count(), 0);
    }
}

/// A synthetic single-model report with `classes` classes of one detector.
fn report(classes: usize, detectors: &[&str], sha: &str, verdict: &str, preset: &str) -> serde_json::Value {
    let cs: Vec<serde_json::Value> = (0..classes)
        .map(|c| {
            serde_json::json!({"class": c, "value": 1.0, "anomaly_index": 0.1 * c as f64, "flagged": false,
                               "reason": "r"})
        })
        .collect();
    let ds: Vec<serde_json::Value> = detectors
        .iter()
        .map(|d| {
            serde_json::json!({"name": d, "statistic": "s", "seconds": 1.0, "gradient_evaluations": 1,
            "index_version": 2, "classes": cs})
        })
        .collect();
    serde_json::json!({
        "model": {"path": format!("{sha}.onnx"), "sha256": sha, "size_bytes": 1},
        "verdict": verdict,
        "parameters": {"preset": preset},
        "detectors": ds,
    })
}

#[test]
fn every_output_option_refuses_special_files_and_folders_before_any_work() {
    let sp = specials();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, report(25, &["aegis"], "aa", "clean", "mnist").to_string()).unwrap();
    let grad_model = root().join(MODEL);
    for (kind, out) in sp.all() {
        let o = s(&out);
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (vec![MODEL, "--data", DATA, "--quiet", "--sarif", o], "--sarif"),
            (vec![MODEL, "--data", DATA, "--quiet", "--json", o], "--json"),
            (vec!["export-grad", s(&grad_model), "-o", o], "-o"),
            (vec!["calibrate", s(&good), "-o", o], "-o"),
            (vec!["decide", s(&good), "--json", o], "--json"),
            (vec!["cluster", "fixtures/cluster/ms_blobs.npy", "--reducer", "none", "--embedding", o], "--embedding"),
        ];
        for (args, flag) in cases {
            let out = aegis(&args);
            let expected = if kind == "a folder" { "is a folder".to_string() } else { format!("is {kind}") };
            assert_refused(&out, &[flag, &expected]);
            sp.unchanged();
        }
        // The evidence folder: anything that exists and is not a folder.
        if kind != "a folder" {
            let out = aegis(&[MODEL, "--data", DATA, "--quiet", "--evidence", o]);
            assert_refused(&out, &["--evidence", "is not a folder"]);
            sp.unchanged();
        }
    }
}

#[test]
fn two_outputs_that_are_the_same_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("o");
    std::fs::create_dir(&o).unwrap();
    let same = o.join("same.out");
    let dotted = dir.path().join("o/../o/same.out");
    let out = aegis(&[MODEL, "--data", DATA, "--quiet", "--sarif", s(&same), "--json", s(&dotted)]);
    assert_refused(&out, &["--json", "is the same file as the --sarif output"]);
    assert!(!same.exists());
    // An existing file and a link to it: the same device and inode.
    std::fs::write(&same, b"previous").unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&same, &link).unwrap();
    let out = aegis(&[MODEL, "--data", DATA, "--quiet", "--sarif", s(&same), "--json", s(&link)]);
    assert_refused(&out, &["--json", "is the same file as the --sarif output"]);
    assert_eq!(std::fs::read(&same).unwrap(), b"previous");
}

#[test]
fn no_command_writes_an_output_over_its_own_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    std::fs::copy(root().join(MODEL), &model).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for f in std::fs::read_dir(root().join(DATA)).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, data.join(f.file_name().unwrap())).unwrap();
    }
    let labels = data.join("t10k-labels-idx1-ubyte.gz");
    let images = data.join("t10k-images-idx3-ubyte.gz");
    let stored = dir.path().join("r.json");
    std::fs::write(&stored, serde_json::to_vec(&report(10, &["reach"], "ab12", "clean", "mnist")).unwrap()).unwrap();
    let link = dir.path().join("link.sarif");
    std::os::unix::fs::symlink(&model, &link).unwrap();
    let before = |p: &Path| std::fs::read(p).unwrap();
    let (model_bytes, label_bytes, stored_bytes) = (before(&model), before(&labels), before(&stored));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![s(&model), "--data", s(&data), "--quiet", "--json", s(&model)], "--json"),
        (vec![s(&model), "--data", s(&data), "--quiet", "--sarif", s(&link)], "--sarif"),
        (vec![s(&model), "--data", s(&data), "--quiet", "--json", s(&labels)], "is a file inside the --data path"),
        // One images file as --data: its labels file beside it is read too.
        (
            vec![s(&model), "--data", s(&images), "--quiet", "--sarif", s(&labels)],
            "is a file read beside the --data file",
        ),
        (vec!["decide", s(&stored), "--json", s(&stored)], "is a report read"),
        (vec!["calibrate", s(&stored), "-o", s(&stored)], "is a report read"),
        (vec!["export-grad", s(&model), "-o", s(&model)], "is the model read"),
    ];
    for (args, needle) in cases {
        let out = aegis(&args);
        assert_refused(&out, &[needle, "an output is never written over an input of the run"]);
    }
    let evidence = data.join("evidence");
    let out = aegis(&[s(&model), "--data", s(&data), "--quiet", "--evidence", s(&evidence)]);
    assert_refused(&out, &["--evidence", "evidence is never written into an input folder"]);
    assert!(!evidence.exists());
    assert_eq!(before(&model), model_bytes);
    assert_eq!(before(&labels), label_bytes);
    assert_eq!(before(&stored), stored_bytes);
}

/// A copy of `model` in `dir` whose initializers' bytes live in one external-data file beside it
/// (`weights.bin`, offsets in order), as `onnx.save(..., save_as_external_data=True)` writes them.
fn with_external_data(model: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    use aegis_audit::onnx::proto::{tensor_proto::DataLocation, StringStringEntryProto};
    let mut proto = aegis_audit::onnx::decode(&std::fs::read(model).unwrap()).unwrap();
    let mut weights = Vec::new();
    for t in &mut proto.graph.as_mut().unwrap().initializer {
        let Some(raw) = t.raw_data.take() else { continue };
        let entry = |k: &str, v: String| StringStringEntryProto { key: Some(k.into()), value: Some(v) };
        t.external_data = vec![
            entry("location", "weights.bin".into()),
            entry("offset", weights.len().to_string()),
            entry("length", raw.len().to_string()),
        ];
        t.data_location = Some(DataLocation::External as i32);
        weights.extend_from_slice(&raw);
    }
    assert!(!weights.is_empty(), "the fixture stores its weights as raw data");
    let (path, data) = (dir.join("external.onnx"), dir.join("weights.bin"));
    std::fs::write(&path, aegis_audit::onnx::encode(&proto)).unwrap();
    std::fs::write(&data, weights).unwrap();
    (path, data)
}

#[test]
fn no_output_is_written_over_a_models_external_data() {
    let dir = tempfile::tempdir().unwrap();
    let (model, weights) = with_external_data(&root().join(MODEL), dir.path());
    let weight_bytes = std::fs::read(&weights).unwrap();
    let other = root().join(MODEL);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![s(&model), "--data", DATA, "--quiet", "--json", s(&weights)], "--json"),
        (vec![s(&model), "--data", DATA, "--quiet", "--sarif", s(&weights)], "--sarif"),
        // Several models: the run ends (no report of the other model is written either).
        (vec![s(&model), s(&other), "--data", DATA, "--quiet", "--json", s(&weights)], "--json"),
        (vec!["export-grad", s(&model), "-o", s(&weights)], "-o"),
    ];
    for (args, flag) in cases {
        let out = aegis(&args);
        assert_refused(
            &out,
            &[flag, "is an external-data file of", "an output is never written over an input of the run"],
        );
        assert_eq!(std::fs::read(&weights).unwrap(), weight_bytes, "{args:?} changed the external data");
    }
    // The model itself loads and analyses from its external data.
    let out = aegis(&["inspect", s(&model)]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn every_input_option_refuses_fifos_devices_and_folders_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = d.join("good.json");
    std::fs::write(&good, report(25, &["aegis"], "aa", "clean", "mnist").to_string()).unwrap();
    let cases: Vec<(&str, PathBuf)> = vec![
        ("a FIFO", d.join("fifo.npy")),
        ("a character device", d.join("zero.npy")),
        ("a folder", d.join("folder.npy")),
    ];
    mkfifo(&cases[0].1);
    std::os::unix::fs::symlink("/dev/zero", &cases[1].1).unwrap();
    std::fs::create_dir(&cases[2].1).unwrap();
    let (grad_out, cal_out) = (d.join("g.onnx"), d.join("cal.json"));
    for (kind, input) in &cases {
        let i = s(input);
        let runs: Vec<Vec<&str>> = vec![
            vec![i, "--data", DATA, "--quiet"],
            vec![MODEL, "--data", DATA, "--quiet", "--config", i],
            vec![MODEL, "--data", DATA, "--quiet", "--calibration", i],
            vec!["inspect", i],
            vec!["export-grad", i, "-o", s(&grad_out)],
            vec!["cluster", i],
            vec!["calibrate", i, "-o", s(&cal_out)],
            vec!["decide", i],
            vec!["decide", s(&good), "--calibration", i],
        ];
        for args in runs {
            let out = aegis(&args);
            assert_refused(&out, &[kind]);
        }
    }
    // --data: a FIFO or a device is neither a dataset folder nor a dataset file.
    let out = aegis(&[MODEL, "--data", s(&cases[0].1), "--quiet"]);
    assert_refused(&out, &["--data", "is a FIFO", "give a dataset folder"]);
}

#[test]
fn dataset_files_that_are_fifos_or_links_to_devices_are_named() {
    use aegis_audit::data::{load_dataset, ImageShape, Split};
    let dir = tempfile::tempdir().unwrap();
    let shape = ImageShape::new(1, 28, 28);
    // IDX: the images file is a FIFO.
    let idx = dir.path().join("idx");
    std::fs::create_dir(&idx).unwrap();
    mkfifo(&idx.join("train-images-idx3-ubyte"));
    std::fs::write(idx.join("train-labels-idx1-ubyte"), b"").unwrap();
    let err = load_dataset(&idx, Split::Train, shape).unwrap_err().to_string();
    assert!(err.contains("train-images-idx3-ubyte: is a FIFO, not a regular file"), "{err}");
    // CIFAR-10: the test batch is a link to /dev/zero.
    let cifar = dir.path().join("cifar");
    std::fs::create_dir(&cifar).unwrap();
    std::os::unix::fs::symlink("/dev/zero", cifar.join("test_batch.bin")).unwrap();
    let err = load_dataset(&cifar, Split::Test, ImageShape::new(3, 32, 32)).unwrap_err().to_string();
    assert!(err.contains("test_batch.bin: is a character device, not a regular file"), "{err}");
    // ImageFolder: a FIFO, a link loop and a link to /dev/zero named like images are errors, not skipped.
    for (name, make, needle) in [
        ("x.png", 0, "x.png: is a FIFO, not a regular file"),
        ("loop.png", 1, "loop.png: Too many levels of symbolic links"),
        ("zero.png", 2, "zero.png: is a character device, not a regular file"),
    ] {
        let root = dir.path().join(format!("folder-{make}"));
        std::fs::create_dir_all(root.join("cat")).unwrap();
        std::fs::create_dir_all(root.join("dog")).unwrap();
        let p = root.join("cat").join(name);
        match make {
            0 => mkfifo(&p),
            1 => std::os::unix::fs::symlink(&p, &p).unwrap(),
            _ => std::os::unix::fs::symlink("/dev/zero", &p).unwrap(),
        }
        let err = load_dataset(&root, Split::Train, shape).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
}

/// An IDX images file header: `n` images of 28×28.
fn idx_header(n: u32) -> Vec<u8> {
    let mut h = vec![0, 0, 8, 3];
    for d in [n, 28, 28] {
        h.extend_from_slice(&d.to_be_bytes());
    }
    h
}

#[test]
fn headers_promising_more_than_the_file_holds_are_refused_before_allocation() {
    use aegis_audit::data::{load_dataset, ImageShape, Split};
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let shape = ImageShape::new(1, 28, 28);
    let mut labels = vec![0, 0, 8, 1];
    labels.extend_from_slice(&1_000_000u32.to_be_bytes());
    labels.resize(8 + 1_000_000, 0);
    // Raw: a header of 1,000,000 images over ten images' bytes.
    let raw = dir.path().join("raw");
    std::fs::create_dir(&raw).unwrap();
    let mut bytes = idx_header(1_000_000);
    bytes.resize(bytes.len() + 10 * 784, 0);
    std::fs::write(raw.join("train-images-idx3-ubyte"), &bytes).unwrap();
    std::fs::write(raw.join("train-labels-idx1-ubyte"), &labels).unwrap();
    let err = load_dataset(&raw, Split::Train, shape).unwrap_err().to_string();
    assert!(err.contains("truncated: header [1000000, 28, 28] needs 784000016 bytes, the file has 7856"), "{err}");
    // gzip: the same header, and a trailer that says what the stream really inflates to.
    let gz = dir.path().join("gz");
    std::fs::create_dir(&gz).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&bytes).unwrap();
    std::fs::write(gz.join("train-images-idx3-ubyte.gz"), enc.finish().unwrap()).unwrap();
    std::fs::write(gz.join("train-labels-idx1-ubyte"), &labels).unwrap();
    let err = load_dataset(&gz, Split::Train, shape).unwrap_err().to_string();
    assert!(err.contains("the gzip trailer says the file inflates to 7856"), "{err}");
    // CIFAR-10: a sparse batch (no disk blocks) whose size is not a whole number of records.
    let cifar = dir.path().join("cifar");
    std::fs::create_dir(&cifar).unwrap();
    std::fs::File::create(cifar.join("test_batch.bin")).unwrap().set_len(349_000 * 3073 + 1).unwrap();
    let err = load_dataset(&cifar, Split::Test, ImageShape::new(3, 32, 32)).unwrap_err().to_string();
    assert!(err.contains("is not a positive multiple of the 3073-byte CIFAR-10 record"), "{err}");
}

#[test]
fn a_split_larger_than_the_memory_bound_keeps_a_sample_and_reads_only_it() {
    use aegis_audit::data::{load_dataset_with_limits, DataLimits, ImageShape, Split};
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    // 100,000 images that really are there (zeros compress 1000:1), kept to 2^20 values: 1,337 images.
    let n = 100_000u32;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&idx_header(n)).unwrap();
    let zeros = vec![0u8; 784 * 1000];
    for _ in 0..n / 1000 {
        enc.write_all(&zeros).unwrap();
    }
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), enc.finish().unwrap()).unwrap();
    let mut labels = vec![0, 0, 8, 1];
    labels.extend_from_slice(&n.to_be_bytes());
    labels.extend((0..n).map(|i| (i % 10) as u8));
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), &labels).unwrap();
    let limits = DataLimits { max_kept_values: 1 << 20, ..DataLimits::default() };
    let set = load_dataset_with_limits(dir.path(), Split::Train, ImageShape::new(1, 28, 28), &limits).unwrap();
    assert_eq!((set.n, set.available), ((1 << 20) / 784, n as usize));
    assert_eq!(set.pixels.len(), set.n * 784);
    assert_eq!(set.labels.len(), set.n);
    assert!(set.labels.iter().all(|&l| (0..10).contains(&l)));
    // The same dataset read again gives the same sample.
    let again = load_dataset_with_limits(dir.path(), Split::Train, ImageShape::new(1, 28, 28), &limits).unwrap();
    assert_eq!(again.labels, set.labels);
}

#[test]
fn an_oversized_report_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    std::fs::File::create(&big).unwrap().set_len(256 << 20).unwrap(); // sparse: no disk blocks
    let out = aegis(&["calibrate", s(&big), "-o", s(&dir.path().join("cal.json"))]);
    assert_refused(&out, &["big.json", "268435456 bytes, more than the 33554432 bytes a report may have"]);
    let out = aegis(&["decide", s(&big)]);
    assert_refused(&out, &["268435456 bytes, more than the 33554432 bytes a report may have"]);
}

#[test]
fn calibrate_and_decide_refuse_duplicates_unknowns_and_empty_reports() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let write = |name: &str, v: serde_json::Value| std::fs::write(dir.path().join(name), v.to_string()).unwrap();
    write("a.json", report(25, &["aegis"], "aa", "clean", "mnist"));
    write("b.json", report(25, &["aegis"], "bb", "clean", "mnist"));
    std::fs::copy(dir.path().join("a.json"), dir.path().join("copy.json")).unwrap();
    write("dup-detector.json", report(25, &["aegis", "aegis"], "cc", "clean", "mnist"));
    write("unknown.json", report(25, &["aegis", "shortcut"], "dd", "clean", "mnist"));
    write("empty.json", serde_json::json!({"models": []}));
    write("suspected.json", report(25, &["aegis"], "ee", "suspected", "mnist"));
    let out = p("cal.json");
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec!["calibrate".into(), p("a.json"), p("a.json"), "-o".into(), out.clone()],
            vec!["the same model (sha256 aa)"],
        ),
        (
            vec!["calibrate".into(), p("a.json"), p("copy.json"), "-o".into(), out.clone()],
            vec!["copy.json", "the same model"],
        ),
        (vec!["decide".into(), p("a.json"), p("copy.json")], vec!["the same model (sha256 aa)"]),
        (
            vec!["calibrate".into(), p("dup-detector.json"), "-o".into(), out.clone()],
            vec!["detector 'aegis' is listed twice"],
        ),
        (vec!["decide".into(), p("dup-detector.json")], vec!["detector 'aegis' is listed twice"]),
        (vec!["calibrate".into(), p("unknown.json"), "-o".into(), out.clone()], vec!["'shortcut' is not a detector"]),
        (vec!["decide".into(), p("unknown.json")], vec!["'shortcut' is not a detector"]),
        (vec!["calibrate".into(), p("empty.json"), "-o".into(), out.clone()], vec!["holds no model"]),
        (vec!["decide".into(), p("empty.json")], vec!["holds no model"]),
        (
            vec!["calibrate".into(), p("a.json"), p("suspected.json"), "-o".into(), out.clone()],
            vec!["suspected.json", "backdoor suspected", "--allow-suspected"],
        ),
    ];
    for (args, needles) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = aegis(&args);
        assert_refused(&o, &needles);
        assert!(!dir.path().join("cal.json").exists(), "{args:?}");
    }
    // With the override, a suspected report is accepted as clean; the calibration respects the umask.
    let o = run(
        &["calibrate", &p("a.json"), &p("suspected.json"), "-o", &out, "--allow-suspected"],
        0o022,
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o644);
    let o = run(&["calibrate", &p("a.json"), &p("b.json"), "-o", &out], 0o077, Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
    // decide warns, as the audit does, when the calibration was measured with another preset.
    write("cifar.json", report(25, &["aegis"], "ff", "clean", "cifar10"));
    let o = aegis(&["decide", &p("cifar.json"), "--calibration", &out]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("warning") && err.contains("preset mnist, this model with preset cifar10"), "{err}");
}

#[test]
fn numbers_out_of_range_are_refused_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let mut cal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("config/calibration.json")).unwrap()).unwrap();
    cal["detectors"][0]["weight"] = serde_json::json!(1e308);
    std::fs::write(p("heavy.json"), cal.to_string()).unwrap();
    let sarif = p("r.sarif");
    let o = aegis(&[MODEL, "--data", DATA, "--quiet", "--sarif", &sarif, "--calibration", &p("heavy.json")]);
    assert_refused(&o, &["heavy.json", "must be in [0, 1000]"]);
    // The shortlists that judge adaptive audits are checked as the null classes are.
    let mut cal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("config/calibration.json")).unwrap()).unwrap();
    cal["shortlist_classes"][0]["indices"]["reach"] = serde_json::json!(1e300);
    std::fs::write(p("wild-shortlist.json"), cal.to_string()).unwrap();
    let o = aegis(&[MODEL, "--data", DATA, "--quiet", "--sarif", &sarif, "--calibration", &p("wild-shortlist.json")]);
    assert_refused(&o, &["wild-shortlist.json", "index of 'reach'", "outside [-1e9, 1e9]"]);
    let mut r = report(25, &["aegis"], "aa", "clean", "mnist");
    r["detectors"][0]["classes"][3]["anomaly_index"] = serde_json::json!(1e300);
    std::fs::write(p("huge-index.json"), r.to_string()).unwrap();
    let o = aegis(&["decide", &p("huge-index.json")]);
    assert_refused(&o, &["anomaly index", "is outside [-1e9, 1e9]"]);
    // With --skip-precondition, the precondition flags are still checked.
    // An MNIST model's error names every preset the flags fail under, not only the CIFAR-10 one.
    for (flag, value) in [("--precondition-eps", "=-1"), ("--precondition-eps", "=NaN"), ("--min-adv-accuracy", "=NaN")]
    {
        let arg = format!("{flag}{value}");
        let o = aegis(&[MODEL, "--data", DATA, "--quiet", "--sarif", &sarif, "--skip-precondition", &arg]);
        assert_refused(&o, &[flag, "every preset ("]);
        assert!(!stderr(&o).contains("preset 'cifar10'"), "{}", stderr(&o));
    }
    assert!(!Path::new(&sarif).exists());
}

#[test]
fn a_missing_dataset_is_one_line_with_a_hint() {
    let o = aegis(&[MODEL, "--data", "fixtures/mnist", "--quiet"]);
    assert_refused(&o, &["--data fixtures/mnist: No such file or directory; give a dataset folder"]);
    let err = stderr(&o);
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    // An I/O error is not repeated after the message that quotes it.
    let o = aegis(&[MODEL, "--data", "README.md/x", "--quiet"]);
    assert_refused(&o, &["Not a directory"]);
    assert_eq!(stderr(&o).matches("Not a directory").count(), 1, "{}", stderr(&o));
}

/// Starts an audit with `--evidence` beside an existing report, waits for its staging folder, sends
/// `signal` and checks: exit 128 + signal, one line saying it was interrupted, no staging folder or
/// temporary file left, the previous report unchanged.
fn interrupted_by(signal: libc::c_int) {
    let dir = tempfile::tempdir().unwrap();
    let sarif = dir.path().join("r.sarif");
    std::fs::write(&sarif, b"previous").unwrap();
    let evidence = dir.path().join("evidence");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aegis-audit"))
        .current_dir(root())
        .args([MODEL, "--data", DATA, "--quiet", "--sarif", s(&sarif), "--evidence", s(&evidence)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let staging = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with(".aegis-evidence."))
    };
    let start = Instant::now();
    while !staging() {
        assert!(child.try_wait().unwrap().is_none(), "the audit ended before its staging folder was seen");
        assert!(start.elapsed() < Duration::from_secs(120), "no staging folder appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(60), "hung after the signal");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(128 + signal), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("aegis-audit: interrupted"), "{err}");
    let left: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, vec!["r.sarif".to_string()], "only the previous report is left");
    assert_eq!(std::fs::read(&sarif).unwrap(), b"previous");
}

#[test]
fn sigterm_removes_the_staging_folder_and_keeps_the_previous_report() {
    interrupted_by(libc::SIGTERM);
}

#[test]
fn sigint_removes_the_staging_folder_and_keeps_the_previous_report() {
    interrupted_by(libc::SIGINT);
}
