//! ImageFolder datasets: one sub-folder per class (sorted names → label indices) of PNG/JPEG files,
//! optionally under `train/` and `test/`.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageReader, Limits};

use super::{checked_values, file_name, DataError, DataLimits, DatasetFormat, ImageSet, ImageShape, Resize, Split};

/// Most pixels of an image that is resized (`--resize`): 2^25 (about 33 megapixels), so that decoding
/// it stays within about 512 MiB whatever its header says.
pub const MAX_RESIZED_PIXELS: u64 = 1 << 25;

/// File extensions read as images (compared case-insensitively).
pub(super) const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Visible sub-folders of `dir`, sorted by name.
fn sub_dirs(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !file_name(p).starts_with('.'))
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Image files of a class folder, sorted by name: every visible entry with an image extension, which
/// must be a regular file (links followed): a FIFO, a device, a link loop or a dangling link named
/// `x.png` is an error naming it, as a text file named `x.png` is.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !file_name(p).starts_with('.')
                && p.extension()
                    .map(|e| e.to_string_lossy().to_ascii_lowercase())
                    .is_some_and(|e| EXTENSIONS.contains(&e.as_str()))
        })
        .collect();
    files.sort();
    for file in &files {
        let meta = std::fs::metadata(file).map_err(|e| crate::fsio::FileError::io(file, &e))?;
        if !meta.is_file() {
            let kind = crate::fsio::kind_of(&meta.file_type());
            return Err(crate::fsio::FileError::NotRegular { path: file.clone(), kind }.into());
        }
    }
    Ok(files)
}

/// The folder holding the class sub-folders for `split`: `root/<split>` when `root` is split into
/// `train/`/`test/` (optionally `val/`) folders only, `root` otherwise.
fn split_root(root: &Path, split: Split) -> Result<PathBuf, DataError> {
    let subs = sub_dirs(root)?;
    let is_split_name = |p: &PathBuf| matches!(file_name(p).as_str(), "train" | "test" | "val");
    if !subs.is_empty() && subs.iter().all(is_split_name) {
        let dir = root.join(split.name());
        if !dir.is_dir() {
            return Err(DataError::UnknownLayout {
                path: root.to_path_buf(),
                problem: format!("split into train/test folders but has no '{}' folder", split.name()),
            });
        }
        return Ok(dir);
    }
    Ok(root.to_path_buf())
}

/// Reads the ImageFolder dataset at `root` (see [`super::load_dataset`] for the channel rules).
pub(super) fn load(
    root: &Path,
    split: Split,
    expected: ImageShape,
    limits: &DataLimits,
) -> Result<ImageSet, DataError> {
    if expected.c != 1 && expected.c != 3 {
        return Err(DataError::shape(
            root,
            format!("the model expects {expected}: ImageFolder images give 1 or 3 channels"),
        ));
    }
    let dir = split_root(root, split)?;
    let classes = sub_dirs(&dir)?;
    if classes.is_empty() {
        return Err(DataError::UnknownLayout {
            path: dir,
            problem: "no dataset found: no IDX files (train-images-idx3-ubyte...), no CIFAR-10 batches \
                      (data_batch_*.bin, test_batch.bin), and no class sub-folders (ImageFolder)"
                .into(),
        });
    }
    // List every class's files and check the total count before decoding anything.
    let mut listed = Vec::with_capacity(classes.len());
    let mut total = 0usize;
    for class_dir in &classes {
        let files = image_files(class_dir)?;
        if files.is_empty() {
            return Err(DataError::malformed(class_dir, "class folder holds no PNG or JPEG image"));
        }
        total = total.saturating_add(files.len());
        checked_values(&dir, total, expected, limits)?;
        listed.push(files);
    }
    // Only the files kept are decoded (a seeded sample when the split holds more than MAX_KEPT_VALUES).
    let kept = super::kept_indices(total, expected, limits);
    let n = kept.as_ref().map_or(total, Vec::len);
    let mut wanted = kept.as_deref().map(|k| k.iter().peekable());
    let mut pixels = Vec::with_capacity(n.saturating_mul(expected.len()));
    let mut labels = Vec::with_capacity(n);
    let mut class_names = Vec::with_capacity(classes.len());
    let mut global = 0usize;
    for (label, (class_dir, files)) in classes.iter().zip(&listed).enumerate() {
        for file in files {
            let take = wanted.as_mut().is_none_or(|it| it.next_if_eq(&&global).is_some());
            global += 1;
            if take {
                pixels.extend(read_image(file, expected, limits)?);
                labels.push(label as i64);
            }
        }
        class_names.push(file_name(class_dir));
    }
    Ok(ImageSet {
        n: labels.len(),
        available: total,
        c: expected.c,
        h: expected.h,
        w: expected.w,
        pixels,
        labels,
        class_names,
        source: dir.display().to_string(),
        format: DatasetFormat::ImageFolder,
    })
}

/// Opens an image file with its format guessed from content. With `decode_limits` (height, width),
/// the decoder is bound to that size: the header's width and height may not exceed it, and the decoder
/// may allocate at most what an image of that size needs (16-bit RGBA, twice over), so a decompression
/// bomb is refused from its header.
fn reader<'a>(
    bytes: &'a [u8],
    file: &Path,
    decode_limits: Option<(u32, u32)>,
) -> Result<ImageReader<std::io::Cursor<&'a [u8]>>, DataError> {
    let mut r =
        ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| DataError::io(file, e))?;
    let Some((h, w)) = decode_limits else {
        return Ok(r);
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some((h as u64).saturating_mul(w as u64).saturating_mul(16).saturating_add(1 << 20));
    r.limits(limits);
    Ok(r)
}

/// Height and width of the first image of the split's first class (from its header), for a model that
/// leaves its input size open.
pub(super) fn first_image_size(root: &Path, split: Split, limits: &DataLimits) -> Result<(usize, usize), DataError> {
    let dir = split_root(root, split)?;
    let first = sub_dirs(&dir)?.into_iter().next().map(|class| image_files(&class)).transpose()?;
    let file = first.and_then(|files| files.into_iter().next()).ok_or_else(|| DataError::UnknownLayout {
        path: dir.clone(),
        problem: "no class folder with an image".into(),
    })?;
    let bytes = crate::fsio::read_input(&file, limits.max_image_file_bytes, "an image file")?;
    let (w, h) = reader(&bytes, &file, None)?.into_dimensions().map_err(|e| header_error(&file, e))?;
    Ok((h as usize, w as usize))
}

/// Decodes one image into CHW `f32` values in `[0, 1]` of shape `expected`. The file's size and the
/// dimensions in its header are checked before decoding.
pub(crate) fn read_image(file: &Path, expected: ImageShape, limits: &DataLimits) -> Result<Vec<f32>, DataError> {
    // Opened once (a regular file), its size checked before it is read.
    let bytes = match crate::fsio::read_input(file, limits.max_image_file_bytes, "an image file") {
        Err(crate::fsio::FileError::TooLarge { len, .. }) => {
            return Err(DataError::limit(
                file,
                format!(
                    "image file of {len} bytes, above the limit of {} bytes (DataLimits::max_image_file_bytes)",
                    limits.max_image_file_bytes
                ),
            ))
        }
        other => other?,
    };
    // Check the size from the header before decoding (no allocation sized by an unchecked header).
    let (w, h) = reader(&bytes, file, None)?.into_dimensions().map_err(|e| header_error(file, e))?;
    let same = (h as usize, w as usize) == (expected.h, expected.w);
    if !same && limits.resize == Resize::None {
        return Err(DataError::shape(
            file,
            format!(
                "image is {h}×{w} (H×W), the model expects {}×{}; resize the dataset first, or read it with \
                 --resize crop|stretch",
                expected.h, expected.w
            ),
        ));
    }
    if !same && (h as u64).saturating_mul(w as u64) > MAX_RESIZED_PIXELS {
        return Err(DataError::limit(
            file,
            format!("image is {h}×{w} (H×W): more than {MAX_RESIZED_PIXELS} pixels, the most --resize decodes"),
        ));
    }
    let img = reader(&bytes, file, Some((h, w)))?.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => {
            DataError::limit(file, format!("decoding needs more memory than a {h}×{w} image ({l})"))
        }
        e => DataError::malformed(file, format!("cannot decode image: {e}")),
    })?;
    let img = if same { img } else { resized(&img, expected, limits.resize) };
    to_chw(&img, file, expected.c)
}

/// `img` brought to the model's height and width: stretched, or scaled to cover it (aspect ratio
/// kept) and its centre cut out. Bilinear filtering, widened when shrinking (antialiased), as PIL's
/// and torchvision's bilinear resize.
fn resized(img: &DynamicImage, expected: ImageShape, mode: Resize) -> DynamicImage {
    use image::imageops::FilterType;
    let (th, tw) = (expected.h as u32, expected.w as u32);
    match mode {
        Resize::None | Resize::Stretch => img.resize_exact(tw, th, FilterType::Triangle),
        Resize::Crop => {
            let (w, h) = (img.width() as f64, img.height() as f64);
            let scale = (th as f64 / h).max(tw as f64 / w);
            let (sw, sh) = (((w * scale).round() as u32).max(tw), ((h * scale).round() as u32).max(th));
            let scaled = img.resize_exact(sw, sh, FilterType::Triangle);
            scaled.crop_imm((sw - tw) / 2, (sh - th) / 2, tw, th)
        }
    }
}

/// A header that cannot be read (or one that asks for more than image's default limits).
fn header_error(file: &Path, e: image::ImageError) -> DataError {
    match e {
        image::ImageError::Limits(l) => {
            DataError::limit(file, format!("the image header asks for too much memory ({l})"))
        }
        e => DataError::malformed(file, format!("not a readable PNG/JPEG image: {e}")),
    }
}

/// Converts a decoded image to CHW `f32` with `c` channels, refusing ambiguous conversions.
fn to_chw(img: &DynamicImage, file: &Path, c: usize) -> Result<Vec<f32>, DataError> {
    let color = img.color();
    if color.has_alpha() && img.to_rgba32f().pixels().any(|p| p.0[3] < 1.0) {
        return Err(DataError::shape(
            file,
            "image has transparent pixels: cannot map them to the model's input unambiguously",
        ));
    }
    let (w, h) = (img.width() as usize, img.height() as usize);
    let plane = w * h;
    if c == 1 {
        if !color.has_color() {
            return Ok(img.to_luma32f().into_raw());
        }
        let rgb = img.to_rgb32f();
        if rgb.pixels().any(|p| p.0[0] != p.0[1] || p.0[1] != p.0[2]) {
            return Err(DataError::shape(
                file,
                "colour image but the model expects 1 channel (grayscale); convert the dataset first",
            ));
        }
        return Ok(rgb.pixels().map(|p| p.0[0]).collect());
    }
    // c == 3: grayscale is replicated, colour is kept.
    let rgb = img.to_rgb32f();
    let mut out = vec![0.0f32; 3 * plane];
    for (i, p) in rgb.pixels().enumerate() {
        for ch in 0..3 {
            out[ch * plane + i] = p.0[ch].clamp(0.0, 1.0);
        }
    }
    Ok(out)
}
