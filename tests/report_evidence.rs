//! Evidence files: PNGs decode with the expected sizes, the index page escapes hostile strings and uses
//! relative links, and atomic writes never leave a partial file.

mod report_support;

use aegis_audit::report::evidence::{mask_png, scatter_png, BarChart, ImageGrid, PLOT_SIZE};
use aegis_audit::report::html::{escape, index_html};
use aegis_audit::report::{write_atomic, EvidenceFile, EvidenceKind, ReportError, Verdict};

fn decode(path: &std::path::Path) -> image::RgbImage {
    image::open(path).unwrap().to_rgb8()
}

#[test]
fn scatter_png_has_plot_size_and_colours() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scatter.png");
    let points: Vec<[f64; 2]> = (0..60).map(|i| [f64::from(i % 10) * 3.0, f64::from(i / 10) * -2.5]).collect();
    let clusters: Vec<usize> = (0..60).map(|i| if i == 59 { usize::MAX } else { i % 3 }).collect();
    let translated: Vec<bool> = (0..60).map(|i| i % 2 == 0).collect();
    scatter_png(&path, &points, &clusters, &translated, "class 7: clean vs translated").unwrap();
    let img = decode(&path);
    assert_eq!(img.dimensions(), PLOT_SIZE);
    // Cluster 0's blue (tab10) appears, so points were drawn.
    assert!(img.pixels().any(|p| p.0 == [31, 119, 180]));
    // Text was drawn with the embedded font: some dark pixels exist in the caption band.
    let dark_top =
        (0..PLOT_SIZE.0).flat_map(|x| (0..40).map(move |y| (x, y))).filter(|&(x, y)| img.get_pixel(x, y).0[0] < 100);
    assert!(dark_top.count() > 50);
}

#[test]
fn scatter_png_rejects_mismatched_lengths_and_nan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.png");
    let err = scatter_png(&path, &[[0.0, 1.0]], &[0, 1], &[true], "t").unwrap_err();
    assert!(matches!(err, ReportError::InvalidInput { .. }), "{err}");
    assert!(err.to_string().contains("1 points, 2 cluster labels"), "{err}");
    let err = scatter_png(&path, &[[f64::NAN, 1.0]], &[0], &[true], "t").unwrap_err();
    assert!(err.to_string().contains("NaN"));
    assert!(!path.exists());
}

#[test]
fn image_grid_png_size_and_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    let (n, c, h, w) = (5, 1, 4, 3);
    let mut images = vec![0.0f32; n * c * h * w];
    images[0] = 1.0; // image 0, pixel (0, 0) white
    ImageGrid { n, c, h, w, columns: 3, upscale: 2 }.write_png(&path, &images).unwrap();
    let img = decode(&path);
    assert_eq!(img.dimensions(), ((3 * (3 * 2 + 2) + 2) as u32, (2 * (4 * 2 + 2) + 2) as u32));
    assert_eq!(img.get_pixel(2, 2).0, [255, 255, 255]);
    assert_eq!(img.get_pixel(3, 3).0, [255, 255, 255]);
    assert_eq!(img.get_pixel(4, 2).0, [0, 0, 0]);
    // RGB images keep their colours.
    let rgb = [1.0f32, 0.0, 0.5];
    ImageGrid { n: 1, c: 3, h: 1, w: 1, columns: 4, upscale: 1 }.write_png(&path, &rgb).unwrap();
    assert_eq!(decode(&path).get_pixel(2, 2).0, [255, 0, 128]);
}

#[test]
fn image_grid_png_rejects_bad_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.png");
    let err = ImageGrid { n: 1, c: 2, h: 1, w: 5, columns: 1, upscale: 1 }.write_png(&path, &[0.0; 10]).unwrap_err();
    assert!(err.to_string().contains("2 channels"), "{err}");
    let err = ImageGrid { n: 2, c: 1, h: 2, w: 3, columns: 1, upscale: 1 }.write_png(&path, &[0.0; 10]).unwrap_err();
    assert!(err.to_string().contains("10 values do not hold 2 images"), "{err}");
}

#[test]
fn bar_chart_and_mask_pngs() {
    let dir = tempfile::tempdir().unwrap();
    let bars = dir.path().join("reach.png");
    let labels: Vec<String> = (0..10).map(|k| k.to_string()).collect();
    let values: Vec<f64> = (0..10).map(|k| if k == 4 { 0.95 } else { 0.1 + 0.01 * f64::from(k) }).collect();
    let highlight: Vec<bool> = (0..10).map(|k| k == 4).collect();
    let chart = BarChart {
        labels: &labels,
        values: &values,
        highlight: &highlight,
        title: "reach success rate",
        y_max: Some(1.0),
        threshold: None,
    };
    chart.write_png(&bars).unwrap();
    let img = decode(&bars);
    assert_eq!(img.dimensions(), PLOT_SIZE);
    assert!(img.pixels().any(|p| p.0 == [214, 39, 40]), "flagged bar in red");
    assert!(BarChart { values: &values[..3], ..chart }.write_png(&bars).is_err());
    let line = BarChart { threshold: Some(0.5), ..chart };
    let with_line = dir.path().join("line.png");
    line.write_png(&with_line).unwrap();
    chart.write_png(&bars).unwrap();
    let (plain, lined) = (decode(&bars), decode(&with_line));
    let changed: Vec<_> = plain.pixels().zip(lined.pixels()).filter(|(a, b)| a != b).map(|(_, b)| b.0).collect();
    assert!(!changed.is_empty() && changed.iter().all(|p| p == &[0, 0, 0]), "the threshold adds a black line only");
    assert!(BarChart { threshold: Some(f64::NAN), ..chart }.write_png(&bars).is_err());

    let mask_path = dir.path().join("mask.png");
    let mask = vec![0.5f32; 4 * 4];
    let pattern = vec![1.0f32; 3 * 4 * 4];
    mask_png(&mask_path, &mask, &pattern, 3, 4, 4, 2).unwrap();
    let m = decode(&mask_path);
    assert_eq!(m.dimensions(), ((3 * (4 * 2 + 2) + 2) as u32, (4 * 2 + 2 + 2) as u32));
    assert_eq!(m.get_pixel(2, 2).0, [128, 128, 128]);
    assert!(mask_png(&mask_path, &mask[..3], &pattern, 3, 4, 4, 2).is_err());
}

#[test]
fn index_html_escapes_hostile_names_and_links_relatively() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = report_support::report(Verdict::Suspected);
    report.classes[7].name = Some("<script>alert('x')</script>".into());
    report.classes[7].summary = "a & b \"quoted\"".into();
    report.model.path = "m<img src=x onerror=alert(1)>.onnx".into();
    let path = index_html(dir.path(), &report).unwrap();
    assert_eq!(path, dir.path().join("index.html"));
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(!html.contains("<script>"));
    assert!(!html.contains("<img src=x"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(html.contains("a &amp; b &quot;quoted&quot;"));
    assert!(html.contains("<img src=\"class_7_tsne.png\""));
    assert!(html.contains("BACKDOOR SUSPECTED"));
    assert_eq!(escape("<&>\"'"), "&lt;&amp;&gt;&quot;&#39;");
}

#[test]
fn index_html_refuses_paths_leaving_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["../secret.png", "/etc/passwd", "a/../../b.png"] {
        let mut report = report_support::report(Verdict::Suspected);
        report.classes[7].evidence.push(EvidenceFile {
            kind: EvidenceKind::ImageGrid,
            path: bad.into(),
            caption: "x".into(),
        });
        let err = index_html(dir.path(), &report).unwrap_err();
        assert!(matches!(err, ReportError::UnsafePath(ref p) if p == bad), "{err}");
    }
    assert!(!dir.path().join("index.html").exists());
}

#[test]
fn write_atomic_replaces_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.sarif");
    write_atomic(&path, b"first").unwrap();
    write_atomic(&path, b"second version").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second version");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
}

#[test]
fn write_atomic_failure_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    // The target is an existing non-empty directory: the rename fails after the data was written.
    let target = dir.path().join("report.sarif");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    let err = write_atomic(&target, b"{\"version\": \"2.1.0\"}").unwrap_err();
    assert!(err.to_string().contains("report.sarif"), "{err}");
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["report.sarif".to_string()], "temporary file removed");
    assert!(target.is_dir());
    // A missing folder fails before anything is written.
    let missing = dir.path().join("no/such/dir/report.sarif");
    assert!(write_atomic(&missing, b"x").is_err());
    assert!(!missing.exists());
}
