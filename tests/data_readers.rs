//! Dataset readers on small files generated here: IDX (raw and gzip), CIFAR-10 binary batches and
//! ImageFolder (PNG and JPEG), plus the hostile-input rules (truncation, magic, absurd headers, shapes).

use std::io::Write;
use std::path::Path;

use aegis_audit::data::{
    load_dataset, load_dataset_with_limits, DataError, DataLimits, DatasetFormat, ImageShape, Resize, Split,
};
use flate2::write::GzEncoder;

/// An IDX file of `u8` with dimensions `dims`.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Writes an MNIST-like split of `n` 4×3 images (pixel value = image index) to `dir`.
fn write_idx(dir: &Path, prefix: &str, n: u8, compress: bool) {
    let pixels: Vec<u8> = (0..n).flat_map(|i| std::iter::repeat_n(i * 10, 12)).collect();
    let labels: Vec<u8> = (0..n).map(|i| i % 3).collect();
    let (img, lab) = (idx_bytes(&[u32::from(n), 4, 3], &pixels), idx_bytes(&[u32::from(n)], &labels));
    let ext = if compress { ".gz" } else { "" };
    let (img, lab) = if compress { (gz(&img), gz(&lab)) } else { (img, lab) };
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte{ext}")), img).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte{ext}")), lab).unwrap();
}

const MNISTISH: ImageShape = ImageShape { c: 1, h: 4, w: 3 };

#[test]
fn idx_raw_and_gz_read_the_same() {
    let raw = tempfile::tempdir().unwrap();
    let gzd = tempfile::tempdir().unwrap();
    write_idx(raw.path(), "train", 5, false);
    write_idx(gzd.path(), "train", 5, true);
    write_idx(gzd.path(), "t10k", 2, true);
    let a = load_dataset(raw.path(), Split::Train, MNISTISH).unwrap();
    let b = load_dataset(gzd.path(), Split::Train, MNISTISH).unwrap();
    assert_eq!(a.pixels, b.pixels);
    assert_eq!((a.n, a.c, a.h, a.w), (5, 1, 4, 3));
    assert_eq!(a.format, DatasetFormat::Idx);
    assert_eq!(a.labels, vec![0, 1, 2, 0, 1]);
    assert!((a.image(2).unwrap()[0] - 20.0 / 255.0).abs() < 1e-6);
    let t = load_dataset(gzd.path(), Split::Test, MNISTISH).unwrap();
    assert_eq!(t.n, 2);
    // A single images file finds its labels file.
    let one = load_dataset(&gzd.path().join("train-images-idx3-ubyte.gz"), Split::Test, MNISTISH).unwrap();
    assert_eq!(one.n, 5);
}

#[test]
fn idx_wrong_shape_names_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), "train", 3, false);
    let err = load_dataset(dir.path(), Split::Train, ImageShape::new(1, 28, 28)).unwrap_err();
    assert!(matches!(err, DataError::ShapeMismatch { .. }));
    let msg = err.to_string();
    assert!(msg.contains("[1, 4, 3]") && msg.contains("[1, 28, 28]") && msg.contains("train-images"), "{msg}");
}

#[test]
fn idx_hostile_headers_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), "train", 3, false);
    let images = dir.path().join("train-images-idx3-ubyte");
    let good = std::fs::read(&images).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..good.len() - 5].to_vec(), "truncated"),
        (vec![1, 2, 8, 3, 0, 0], "wrong magic"),
        (idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[]), "absurd dimensions"),
        (idx_bytes(&[0x4000_0000, 4, 3], &[0; 12]), "absurd dimensions"),
        (idx_bytes(&[3, 4], &[0; 12]), "rank 2"),
        ([good.clone(), vec![0]].concat(), "trailing bytes"),
        (vec![0, 0], "shorter than"),
        (gz(&good)[..20].to_vec(), "decompress"),
    ];
    for (bytes, expect) in cases {
        std::fs::write(&images, &bytes).unwrap();
        let msg = load_dataset(dir.path(), Split::Train, MNISTISH).unwrap_err().to_string();
        assert!(msg.contains(expect) && msg.contains("train-images-idx3-ubyte"), "{expect}: {msg}");
    }
    std::fs::write(&images, &good).unwrap();
    std::fs::remove_file(dir.path().join("train-labels-idx1-ubyte")).unwrap();
    let msg = load_dataset(dir.path(), Split::Train, MNISTISH).unwrap_err().to_string();
    assert!(msg.contains("train-labels-idx1-ubyte") && msg.contains("not found"), "{msg}");
}

#[test]
fn idx_label_count_must_match() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), "train", 3, false);
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx_bytes(&[2], &[0, 1])).unwrap();
    let msg = load_dataset(dir.path(), Split::Train, MNISTISH).unwrap_err().to_string();
    assert!(msg.contains("2 labels for 3 images"), "{msg}");
}

/// Labels of more than 256 classes: IDX label files of 32- and 16-bit big-endian integers (types 0x0C
/// and 0x0B) read as their values; a negative label, a wrong byte count and images stored as integers
/// are refused.
#[test]
fn idx_labels_of_many_classes_are_read_from_integer_files() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), "train", 3, false);
    let labels = dir.path().join("train-labels-idx1-ubyte");
    let ints = |kind: u8, values: &[i64], size: usize| -> Vec<u8> {
        let mut out = vec![0, 0, kind, 1];
        out.extend((values.len() as u32).to_be_bytes());
        for &v in values {
            out.extend(&v.to_be_bytes()[8 - size..]);
        }
        out
    };
    std::fs::write(&labels, ints(0x0C, &[999, 0, 70000], 4)).unwrap();
    assert_eq!(load_dataset(dir.path(), Split::Train, MNISTISH).unwrap().labels, vec![999, 0, 70000]);
    std::fs::write(&labels, gz(&ints(0x0B, &[300, 1, 255], 2))).unwrap();
    assert_eq!(load_dataset(dir.path(), Split::Train, MNISTISH).unwrap().labels, vec![300, 1, 255]);
    for (bytes, expect) in [
        (ints(0x0C, &[1, -4, 2], 4), "label -4 of image 1 is negative"),
        (ints(0x0C, &[1, 2, 3], 4)[..18].to_vec(), "truncated"),
        (ints(0x0D, &[1, 2, 3], 4), "element type 0x0d, expected 0x08 (unsigned byte), 0x0B"),
    ] {
        std::fs::write(&labels, &bytes).unwrap();
        let msg = load_dataset(dir.path(), Split::Train, MNISTISH).unwrap_err().to_string();
        assert!(msg.contains(expect) && msg.contains("train-labels-idx1-ubyte"), "{expect}: {msg}");
    }
    // Images stay unsigned bytes.
    write_idx(dir.path(), "train", 3, false);
    let mut images = std::fs::read(dir.path().join("train-images-idx3-ubyte")).unwrap();
    images[2] = 0x0C;
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), images).unwrap();
    let msg = load_dataset(dir.path(), Split::Train, MNISTISH).unwrap_err().to_string();
    assert!(msg.contains("element type 0x0c, expected 0x08 (unsigned byte)") && !msg.contains("0x0B"), "{msg}");
}

/// A CIFAR-10 batch of `n` records: label i % 10, red plane = i, green 128, blue 255.
fn cifar_batch(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push((i % 10) as u8);
        out.extend(std::iter::repeat_n(i as u8, 1024));
        out.extend(std::iter::repeat_n(128u8, 1024));
        out.extend(std::iter::repeat_n(255u8, 1024));
    }
    out
}

const CIFAR: ImageShape = ImageShape { c: 3, h: 32, w: 32 };

#[test]
fn cifar_batches_read_in_order_with_class_names() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("data_batch_1.bin"), cifar_batch(3)).unwrap();
    std::fs::write(dir.join("data_batch_2.bin"), cifar_batch(2)).unwrap();
    std::fs::write(dir.join("test_batch.bin"), cifar_batch(4)).unwrap();
    let names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    std::fs::write(dir.join("batches.meta.txt"), names).unwrap();
    let train = load_dataset(root.path(), Split::Train, CIFAR).unwrap();
    assert_eq!(train.n, 5);
    assert_eq!(train.format, DatasetFormat::Cifar10);
    assert_eq!(train.labels, vec![0, 1, 2, 0, 1]);
    assert_eq!(train.class_names[3], "cat");
    let img = train.image(2).unwrap();
    assert!((img[0] - 2.0 / 255.0).abs() < 1e-6);
    assert!((img[1024] - 128.0 / 255.0).abs() < 1e-6);
    assert_eq!(img[3071], 1.0);
    let test = load_dataset(&dir, Split::Test, CIFAR).unwrap();
    assert_eq!(test.n, 4);
    let one = load_dataset(&dir.join("test_batch.bin"), Split::Train, CIFAR).unwrap();
    assert_eq!(one.n, 4);
}

#[test]
fn cifar_hostile_batches_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let batch = dir.path().join("test_batch.bin");
    let mut bytes = cifar_batch(2);
    bytes.pop();
    std::fs::write(&batch, &bytes).unwrap();
    let msg = load_dataset(dir.path(), Split::Test, CIFAR).unwrap_err().to_string();
    assert!(msg.contains("test_batch.bin") && msg.contains("6145 bytes"), "{msg}");
    let mut bytes = cifar_batch(2);
    bytes[3073] = 42;
    std::fs::write(&batch, &bytes).unwrap();
    let msg = load_dataset(dir.path(), Split::Test, CIFAR).unwrap_err().to_string();
    assert!(msg.contains("record 1: label 42"), "{msg}");
    std::fs::write(&batch, cifar_batch(1)).unwrap();
    let msg = load_dataset(dir.path(), Split::Test, ImageShape::new(1, 28, 28)).unwrap_err().to_string();
    assert!(msg.contains("[3, 32, 32]") && msg.contains("[1, 28, 28]"), "{msg}");
    let msg = load_dataset(dir.path(), Split::Train, CIFAR).unwrap_err().to_string();
    assert!(msg.contains("data_batch_*.bin"), "{msg}");
}

/// Writes an RGB or grayscale PNG/JPEG of size 5×4 (H×W).
fn write_image(path: &Path, rgb: [u8; 3], gray: bool) {
    if gray {
        image::GrayImage::from_pixel(4, 5, image::Luma([rgb[0]])).save(path).unwrap();
    } else {
        image::RgbImage::from_pixel(4, 5, image::Rgb(rgb)).save(path).unwrap();
    }
}

#[test]
fn image_folder_png_and_jpeg_sorted_classes() {
    let root = tempfile::tempdir().unwrap();
    for class in ["b_dog", "a_cat"] {
        std::fs::create_dir(root.path().join(class)).unwrap();
    }
    write_image(&root.path().join("a_cat/1.png"), [255, 0, 0], false);
    write_image(&root.path().join("a_cat/2.JPG"), [0, 0, 255], false);
    write_image(&root.path().join("b_dog/x.png"), [51, 51, 51], true);
    std::fs::write(root.path().join("b_dog/notes.txt"), "ignored").unwrap();
    let set = load_dataset(root.path(), Split::Train, ImageShape::new(3, 5, 4)).unwrap();
    assert_eq!(set.format, DatasetFormat::ImageFolder);
    assert_eq!(set.class_names, vec!["a_cat", "b_dog"]);
    assert_eq!(set.labels, vec![0, 0, 1]);
    let red = set.image(0).unwrap();
    assert_eq!((red[0], red[20], red[40]), (1.0, 0.0, 0.0));
    let blue = set.image(1).unwrap();
    assert!(blue[40] > 0.9 && blue[0] < 0.1, "JPEG blue: {blue:?}");
    let gray = set.image(2).unwrap();
    assert!((gray[0] - 0.2).abs() < 1e-6 && gray[0] == gray[20] && gray[20] == gray[40]);
    // A 1-channel model accepts the gray image but not the coloured ones.
    let msg = load_dataset(root.path(), Split::Train, ImageShape::new(1, 5, 4)).unwrap_err().to_string();
    assert!(msg.contains("1.png") && msg.contains("colour image"), "{msg}");
}

#[test]
fn image_folder_split_and_gray_rgb_for_one_channel() {
    let root = tempfile::tempdir().unwrap();
    for split in ["train", "test"] {
        std::fs::create_dir_all(root.path().join(split).join("zero")).unwrap();
        write_image(&root.path().join(split).join("zero/a.png"), [10, 10, 10], false);
    }
    write_image(&root.path().join("test/zero/b.png"), [20, 20, 20], true);
    let test = load_dataset(root.path(), Split::Test, ImageShape::new(1, 5, 4)).unwrap();
    assert_eq!(test.n, 2);
    assert!(test.source.ends_with("test"));
    assert!((test.image(0).unwrap()[0] - 10.0 / 255.0).abs() < 1e-6);
}

#[test]
fn image_folder_hostile_inputs() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("empty")).unwrap();
    let msg = load_dataset(root.path(), Split::Train, ImageShape::new(3, 5, 4)).unwrap_err().to_string();
    assert!(msg.contains("empty") && msg.contains("no PNG or JPEG"), "{msg}");

    let root = tempfile::tempdir().unwrap();
    let msg = load_dataset(root.path(), Split::Train, ImageShape::new(3, 5, 4)).unwrap_err().to_string();
    assert!(msg.contains("no dataset found"), "{msg}");

    std::fs::create_dir(root.path().join("c")).unwrap();
    write_image(&root.path().join("c/big.png"), [1, 2, 3], false);
    let msg = load_dataset(root.path(), Split::Train, ImageShape::new(3, 32, 32)).unwrap_err().to_string();
    assert!(msg.contains("big.png") && msg.contains("5×4") && msg.contains("32×32"), "{msg}");

    std::fs::write(root.path().join("c/broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let msg = load_dataset(root.path(), Split::Train, ImageShape::new(3, 5, 4)).unwrap_err().to_string();
    assert!(msg.contains("broken.png"), "{msg}");
    std::fs::remove_file(root.path().join("c/broken.png")).unwrap();

    image::RgbaImage::from_pixel(4, 5, image::Rgba([0, 0, 0, 10])).save(root.path().join("c/alpha.png")).unwrap();
    let msg = load_dataset(root.path(), Split::Train, ImageShape::new(3, 5, 4)).unwrap_err().to_string();
    assert!(msg.contains("alpha.png") && msg.contains("transparent"), "{msg}");

    let msg =
        load_dataset(&root.path().join("missing"), Split::Train, ImageShape::new(3, 5, 4)).unwrap_err().to_string();
    assert!(msg.contains("missing") && msg.contains("No such file or directory"), "{msg}");
}

#[test]
fn subset_and_describe() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), "train", 6, false);
    let set = load_dataset(dir.path(), Split::Train, MNISTISH).unwrap();
    let idx = aegis_audit::data::per_class_sample(&set.labels, 1, 2, 3).unwrap();
    let sub = set.subset(&idx).unwrap();
    assert_eq!(sub.n, 2);
    assert!(sub.labels.iter().all(|&l| l == 1));
    assert_eq!(sub.image(0).unwrap(), set.image(idx[0]).unwrap());
    assert!(set.subset(&[6]).is_err());
    assert!(set.describe().contains("6 images [1, 4, 3]"));
    assert_eq!(set.num_classes(), 3);
}

#[test]
fn image_count_limit_is_checked_before_reading_pixels() {
    let limits = DataLimits { max_images: 3, ..DataLimits::default() };
    // ImageFolder: 4 files, one of them not even an image: the count is refused before decoding.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("c")).unwrap();
    for name in ["a.png", "b.png", "c.png"] {
        write_image(&root.path().join("c").join(name), [1, 2, 3], false);
    }
    std::fs::write(root.path().join("c/d.png"), b"not an image").unwrap();
    let err = load_dataset_with_limits(root.path(), Split::Train, ImageShape::new(3, 5, 4), &limits).unwrap_err();
    assert!(matches!(err, DataError::Limit { .. }), "{err:?}");
    assert!(err.to_string().contains("4 images, above the limit of 3 images per split"), "{err}");
    // IDX: the header's count is refused before its data is read (the file holds none).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), idx_bytes(&[1000, 4, 3], &[])).unwrap();
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx_bytes(&[1000], &[])).unwrap();
    let msg = load_dataset_with_limits(dir.path(), Split::Train, MNISTISH, &limits).unwrap_err().to_string();
    assert!(msg.contains("1000 images, above the limit of 3"), "{msg}");
    // CIFAR-10: the count follows from the file size.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test_batch.bin"), cifar_batch(4)).unwrap();
    let msg = load_dataset_with_limits(dir.path(), Split::Test, CIFAR, &limits).unwrap_err().to_string();
    assert!(msg.contains("4 images, above the limit of 3"), "{msg}");
    // The default limit is documented and generous.
    assert_eq!(DataLimits::default().max_images, 1_000_000);
    assert!(load_dataset_with_limits(dir.path(), Split::Test, CIFAR, &DataLimits::default()).is_ok());
}

#[test]
fn image_file_size_limit() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("c")).unwrap();
    write_image(&root.path().join("c/a.png"), [1, 2, 3], false);
    let size = std::fs::metadata(root.path().join("c/a.png")).unwrap().len();
    let limits = DataLimits { max_image_file_bytes: size - 1, ..DataLimits::default() };
    let err = load_dataset_with_limits(root.path(), Split::Train, ImageShape::new(3, 5, 4), &limits).unwrap_err();
    assert!(matches!(err, DataError::Limit { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("image file of {size} bytes, above the limit of {}", size - 1)), "{err}");
}

/// A PNG chunk: length, type, data, CRC-32 of type and data.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend(crc.sum().to_be_bytes());
    out
}

/// A decompression bomb: a PNG whose header declares `w`×`h` grayscale pixels and whose IDAT is a
/// tiny zlib stream of zeros (rows would inflate to gigabytes).
fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit grayscale, deflate, no filter, no interlace
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 1 << 20]).unwrap();
    let idat = z.finish().unwrap();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    out.extend(png_chunk(b"IDAT", &idat));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

#[test]
fn decompression_bomb_is_refused_from_its_header() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("c")).unwrap();
    let bomb = png_bomb(60_000, 60_000);
    assert!(bomb.len() < 10_000, "the bomb file is small: {} bytes", bomb.len());
    std::fs::write(root.path().join("c/bomb.png"), &bomb).unwrap();
    let msg = load_dataset(root.path(), Split::Train, ImageShape::new(1, 28, 28)).unwrap_err().to_string();
    assert!(msg.contains("bomb.png") && msg.contains("60000×60000") && msg.contains("28×28"), "{msg}");
    // Even a model declaring that size does not get it decoded: 3.6e9 values exceed the dataset bound.
    let msg = load_dataset(root.path(), Split::Train, ImageShape::new(1, 60_000, 60_000)).unwrap_err().to_string();
    assert!(msg.contains("exceed the limit"), "{msg}");
}

#[test]
fn hostile_file_names_are_escaped_in_errors() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("c")).unwrap();
    std::fs::write(root.path().join("c/evil\n\u{1b}[2J.png"), b"not an image").unwrap();
    let msg = load_dataset(root.path(), Split::Train, ImageShape::new(3, 5, 4)).unwrap_err().to_string();
    assert!(msg.contains("evil\\n\\u{1b}[2J.png"), "{msg}");
    assert!(!msg.contains('\n') && !msg.contains('\u{1b}'), "{msg:?}");
}

/// An ImageFolder of one class holding one 28×56 (H×W) grayscale image: a white 28×28 centre between
/// two black 28×14 bands.
fn banded_folder() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("c")).unwrap();
    let img = image::GrayImage::from_fn(56, 28, |x, _| image::Luma([if (14..42).contains(&x) { 255 } else { 0 }]));
    img.save(root.path().join("c/banded.png")).unwrap();
    root
}

#[test]
fn images_of_another_size_are_refused_unless_resized() {
    let root = banded_folder();
    let shape = ImageShape::new(1, 28, 28);
    let msg = load_dataset(root.path(), Split::Train, shape).unwrap_err().to_string();
    assert!(msg.contains("banded.png") && msg.contains("28×56") && msg.contains("--resize crop|stretch"), "{msg}");
    let read = |resize| {
        load_dataset_with_limits(root.path(), Split::Train, shape, &DataLimits { resize, ..DataLimits::default() })
            .unwrap()
    };
    // Crop: the image already covers 28×28 at scale 1, so the centre cut out is the white square.
    let crop = read(Resize::Crop);
    assert_eq!((crop.n, crop.c, crop.h, crop.w), (1, 1, 28, 28));
    assert!(crop.pixels.iter().all(|&v| v == 1.0), "{:?}", &crop.pixels[..28]);
    // Stretch: the width is halved, so each row keeps its black bands: black at the edges, white in
    // the middle, half of the row white.
    let stretch = read(Resize::Stretch);
    let row = &stretch.pixels[..28];
    assert!(row[0] < 0.05 && row[27] < 0.05 && row[14] > 0.95, "{row:?}");
    let mean = stretch.pixels.iter().sum::<f32>() / stretch.pixels.len() as f32;
    assert!((mean - 0.5).abs() < 0.05, "{mean}");
    // Crop of an image smaller than the model: scaled up to cover it, then cut.
    let small = tempfile::tempdir().unwrap();
    std::fs::create_dir(small.path().join("c")).unwrap();
    image::RgbImage::from_pixel(10, 20, image::Rgb([255, 0, 0])).save(small.path().join("c/small.png")).unwrap();
    let limits = DataLimits { resize: Resize::Crop, ..DataLimits::default() };
    let set = load_dataset_with_limits(small.path(), Split::Train, ImageShape::new(3, 32, 32), &limits).unwrap();
    assert_eq!((set.c, set.h, set.w), (3, 32, 32));
    assert!(set.pixels[..32 * 32].iter().all(|&v| v == 1.0) && set.pixels[32 * 32..].iter().all(|&v| v == 0.0));
}

#[test]
fn a_resized_image_is_bounded_by_its_header() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("c")).unwrap();
    std::fs::write(root.path().join("c/bomb.png"), png_bomb(60_000, 60_000)).unwrap();
    let limits = DataLimits { resize: Resize::Stretch, ..DataLimits::default() };
    let msg = load_dataset_with_limits(root.path(), Split::Train, ImageShape::new(1, 28, 28), &limits)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("bomb.png") && msg.contains("the most --resize decodes"), "{msg}");
    // Under the pixel bound, the truncated stream is a decoding error, not an allocation of its size.
    std::fs::write(root.path().join("c/bomb.png"), png_bomb(5_000, 5_000)).unwrap();
    let msg = load_dataset_with_limits(root.path(), Split::Train, ImageShape::new(1, 28, 28), &limits)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("bomb.png") && msg.contains("cannot decode image"), "{msg}");
}

#[test]
fn native_size_is_read_from_headers_without_loading() {
    use aegis_audit::data::{native_size, NativeSize};
    let limits = DataLimits::default();
    let dir = tempfile::tempdir().unwrap();
    // IDX: the train images file's header (a folder, or the file itself), one channel.
    let idx = dir.path().join("idx");
    std::fs::create_dir(&idx).unwrap();
    write_idx(&idx, "train", 5, true);
    let want = NativeSize { channels: Some(1), height: 4, width: 3 };
    assert_eq!(native_size(&idx, &limits).unwrap(), want);
    assert_eq!(native_size(&idx.join("train-images-idx3-ubyte.gz"), &limits).unwrap(), want);
    // CIFAR-10: 3×32×32 by the format.
    let cifar = dir.path().join("cifar");
    std::fs::create_dir(&cifar).unwrap();
    std::fs::write(cifar.join("data_batch_1.bin"), cifar_batch(2)).unwrap();
    let want = NativeSize { channels: Some(3), height: 32, width: 32 };
    assert_eq!(native_size(&cifar, &limits).unwrap(), want);
    // ImageFolder: the first training image's header (4 wide, 5 high); channels are the model's.
    let folder = dir.path().join("folder");
    for class in ["a", "b"] {
        std::fs::create_dir_all(folder.join("train").join(class)).unwrap();
        std::fs::create_dir_all(folder.join("test").join(class)).unwrap();
        write_image(&folder.join("train").join(class).join("0.png"), [1, 2, 3], false);
    }
    assert_eq!(native_size(&folder, &limits).unwrap(), NativeSize { channels: None, height: 5, width: 4 });
    // Nothing readable: an error, not a guess.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(native_size(&empty, &limits).is_err());
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), [0u8, 0, 8, 1, 0, 0, 0, 1]).unwrap();
    assert!(native_size(&dir.path().join("train-images-idx3-ubyte"), &limits).is_err());
    let empty_images = idx_bytes(&[0, 0, 0], &[]);
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), empty_images).unwrap();
    assert!(native_size(&dir.path().join("train-images-idx3-ubyte"), &limits).is_err(), "0×0 is no size");
}
