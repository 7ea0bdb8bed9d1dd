//! Reading datasets (IDX, CIFAR-10 binary batches, ImageFolder) into model-ready images, seeded sampling of
//! seed images and per-class clean samples, trigger specifications, and feature matrices (NPY, CSV).
//!
//! Every reader returns an [`ImageSet`]: NCHW `f32` pixels in `[0, 1]` whose channel count and size are
//! checked against what the model expects; nothing is resized. Every bad input (truncated file, wrong magic,
//! absurd header dimensions, wrong channels or size, empty folder, missing file) is a [`DataError`] naming the
//! file and the problem.

use std::path::{Path, PathBuf};

pub mod features;

use thiserror::Error;

use crate::escape::escape;

mod cifar;
mod folder;
mod idx;
pub mod npy;
mod sample;
pub mod trigger;

pub use folder::MAX_RESIZED_PIXELS;
pub use sample::{per_class_sample, sample_indices, sample_other_classes};

/// Largest number of `f32` values a dataset may hold (4 GiB of pixels), a bound on header-driven sizes.
pub const MAX_DATASET_VALUES: usize = 1 << 30;

/// Most `f32` values one split keeps in memory: 2^28 (1 GiB of pixels; all of MNIST's 47 M and
/// CIFAR-10's 154 M training values). A split holding more keeps a seeded uniform sample of
/// `MAX_KEPT_VALUES / (c·h·w)` images, chosen from the header or the file count before any pixel is
/// read, and reads only those ([`ImageSet::available`] says how many there were).
pub const MAX_KEPT_VALUES: usize = 1 << 28;

/// The seed of that sample (fixed: the same dataset always gives the same images).
pub const KEEP_SEED: u64 = 0x6165_6769_735f_6b65;

/// The images of a split of `n` images of `shape` to read: `None` for all of them, or the sorted
/// indices of a seeded sample of `limits.max_kept_values / shape.len()` of them.
pub(crate) fn kept_indices(n: usize, shape: ImageShape, limits: &DataLimits) -> Option<Vec<usize>> {
    let keep = (limits.max_kept_values / shape.len().max(1)).max(1);
    if n <= keep {
        return None;
    }
    let mut idx = sample_indices(n, keep, KEEP_SEED).ok()?;
    idx.sort_unstable();
    Some(idx)
}

/// Bounds on what reading one split of a dataset may cost, checked against headers, file counts and
/// file sizes before any pixel is decoded. [`DataLimits::default`] gives the documented defaults; a
/// caller with a bigger dataset passes its own to [`load_dataset_with_limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataLimits {
    /// Most images read from one split (default [`DEFAULT_MAX_IMAGES`]: 1,000,000).
    pub max_images: usize,
    /// Largest PNG/JPEG file read, in bytes (default [`DEFAULT_MAX_IMAGE_FILE_BYTES`]: 64 MiB).
    pub max_image_file_bytes: u64,
    /// Most `f32` values kept from one split (default [`MAX_KEPT_VALUES`]: 2^28); a split holding more
    /// keeps a seeded sample of images and reads only those.
    pub max_kept_values: usize,
    /// How an ImageFolder image of another size than the model's is brought to it (default: it is
    /// refused); a resized image may have at most [`MAX_RESIZED_PIXELS`] pixels.
    pub resize: Resize,
}

/// How an ImageFolder image whose size differs from the model's input is read (`--resize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Resize {
    /// Refused, with a message naming the file and both sizes.
    #[default]
    None,
    /// Scaled to the model's height and width, the aspect ratio not kept.
    Stretch,
    /// Scaled (aspect ratio kept) until it covers the model's size, then its centre cut out, as
    /// torchvision's `Resize` followed by `CenterCrop`.
    Crop,
}

/// Default [`DataLimits::max_images`]: ten times ImageNet's validation split, sixteen times MNIST's
/// training split.
pub const DEFAULT_MAX_IMAGES: usize = 1_000_000;
/// Default [`DataLimits::max_image_file_bytes`].
pub const DEFAULT_MAX_IMAGE_FILE_BYTES: u64 = 64 << 20;

impl Default for DataLimits {
    fn default() -> Self {
        DataLimits {
            max_images: DEFAULT_MAX_IMAGES,
            max_image_file_bytes: DEFAULT_MAX_IMAGE_FILE_BYTES,
            resize: Resize::None,
            max_kept_values: MAX_KEPT_VALUES,
        }
    }
}

/// Errors of the `data` module.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file or folder could not be read.
    #[error("{}: {source}", esc_path(.path))]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file's content is malformed (bad magic, truncated, inconsistent header...).
    #[error("{}: {}", esc_path(.path), escape(.problem))]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the values involved.
        problem: String,
    },
    /// The data does not fit the model's input (channels or size).
    #[error("{}: {}", esc_path(.path), escape(.problem))]
    ShapeMismatch {
        /// The file or dataset.
        path: PathBuf,
        /// The mismatch, with both shapes.
        problem: String,
    },
    /// No known dataset layout was found at a path.
    #[error("{}: {}", esc_path(.path), escape(.problem))]
    UnknownLayout {
        /// The path given.
        path: PathBuf,
        /// What was looked for.
        problem: String,
    },
    /// The dataset exceeds a [`DataLimits`] bound (too many images, an image file too large or
    /// declaring more pixels than the model takes).
    #[error("{}: {}", esc_path(.path), escape(.problem))]
    Limit {
        /// The file or folder.
        path: PathBuf,
        /// Which limit, with the values.
        problem: String,
    },
    /// The dataset path cannot be reached (it does not exist, or a component is not a folder).
    #[error(
        "{}: {}; give a dataset folder (IDX files, CIFAR-10 batches or class sub-folders) or one IDX images file \
         or CIFAR-10 batch file",
        esc_path(.path),
        escape(.problem)
    )]
    Missing {
        /// The path given.
        path: PathBuf,
        /// The operating system's message.
        problem: String,
    },
    /// A sampling request cannot be met (too few images).
    #[error("cannot sample: {}", escape(.0))]
    Sampling(String),
    /// A trigger specification is invalid.
    #[error("trigger spec {}: {}", esc_path(.path), escape(.problem))]
    Trigger {
        /// The YAML file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A feature matrix file is malformed (format, dtype, shape, values).
    #[error("feature file {}: {}", esc_path(.path), escape(.reason))]
    FeatureFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with values.
        reason: String,
    },
    /// An input is not a regular file (a FIFO, a device, a folder), is larger than its bound, or cannot be
    /// opened.
    #[error(transparent)]
    File(#[from] crate::fsio::FileError),
    /// A feature matrix file could not be read or written.
    #[error("feature file {}: {source}", esc_path(.path))]
    FeatureIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A path as printed in messages, escaped like every name from outside.
fn esc_path(path: &Path) -> String {
    escape(&path.display().to_string()).into_owned()
}

impl DataError {
    pub(crate) fn limit(path: &Path, problem: impl Into<String>) -> Self {
        DataError::Limit { path: path.to_path_buf(), problem: problem.into() }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn malformed(path: &Path, problem: impl Into<String>) -> Self {
        DataError::Malformed { path: path.to_path_buf(), problem: problem.into() }
    }

    pub(crate) fn shape(path: &Path, problem: impl Into<String>) -> Self {
        DataError::ShapeMismatch { path: path.to_path_buf(), problem: problem.into() }
    }
}

/// Which part of a dataset to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The training part (`train-*` IDX files, `data_batch_*.bin`, an ImageFolder's `train/`).
    Train,
    /// The test part (`t10k-*` IDX files, `test_batch.bin`, an ImageFolder's `test/`).
    Test,
}

impl Split {
    /// The split's lower-case name (`train` or `test`).
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// The on-disk format a dataset was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetFormat {
    /// MNIST-style IDX files (raw or gzip).
    Idx,
    /// CIFAR-10 binary batches.
    Cifar10,
    /// Class sub-folders of PNG/JPEG images.
    ImageFolder,
}

/// The shape the model expects for one image: channels, height, width (in a presets file:
/// `{ channels, height, width }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageShape {
    /// Channels (1 or 3).
    #[serde(rename = "channels")]
    pub c: usize,
    /// Height in pixels.
    #[serde(rename = "height")]
    pub h: usize,
    /// Width in pixels.
    #[serde(rename = "width")]
    pub w: usize,
}

impl ImageShape {
    /// A shape from channels, height, width.
    pub fn new(c: usize, h: usize, w: usize) -> Self {
        ImageShape { c, h, w }
    }

    /// Values in one image (`c * h * w`).
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// True when the shape holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {}, {}]", self.c, self.h, self.w)
    }
}

/// A batch of labelled images ready for the model: NCHW `f32` in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// Number of images.
    pub n: usize,
    /// Channels per image.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Images in the split on disk: `n`, or more when the split holds more than [`MAX_KEPT_VALUES`]
    /// values and a seeded sample of `n` was read.
    pub available: usize,
    /// Pixels, NCHW, `n * c * h * w` values in `[0, 1]`.
    pub pixels: Vec<f32>,
    /// One label per image (class index).
    pub labels: Vec<i64>,
    /// Class names by label index where the format has them (ImageFolder folder names, CIFAR-10 meta).
    pub class_names: Vec<String>,
    /// Where the images came from (path and format), for reports.
    pub source: String,
    /// The format read.
    pub format: DatasetFormat,
}

impl ImageSet {
    /// The shape of one image.
    pub fn shape(&self) -> ImageShape {
        ImageShape::new(self.c, self.h, self.w)
    }

    /// The pixels of image `i` (`c * h * w` values), or `None` when `i >= n`.
    pub fn image(&self, i: usize) -> Option<&[f32]> {
        let len = self.shape().len();
        self.pixels.get(i * len..(i + 1) * len)
    }

    /// Number of classes: the largest label + 1 (0 when empty), or the number of class names if larger.
    pub fn num_classes(&self) -> usize {
        let from_labels = self.labels.iter().copied().max().map_or(0, |m| usize::try_from(m).unwrap_or(0) + 1);
        from_labels.max(self.class_names.len())
    }

    /// The images at `indices`, in that order (pixels, labels); errors on an index out of range.
    pub fn subset(&self, indices: &[usize]) -> Result<ImageSet, DataError> {
        let len = self.shape().len();
        let mut pixels = Vec::with_capacity(indices.len().saturating_mul(len).min(MAX_DATASET_VALUES));
        let mut labels = Vec::with_capacity(indices.len().min(self.n));
        for &i in indices {
            let img = self.image(i).ok_or_else(|| {
                DataError::Sampling(format!("index {i} out of range for {} images of {}", self.n, self.source))
            })?;
            pixels.extend_from_slice(img);
            labels.push(self.labels[i]);
        }
        Ok(ImageSet {
            n: indices.len(),
            pixels,
            labels,
            class_names: self.class_names.clone(),
            source: self.source.clone(),
            ..*self
        })
    }

    /// A one-line description for reports: format, source, count, shape, classes.
    pub fn describe(&self) -> String {
        format!(
            "{} images {} from {} ({:?}), {} classes",
            self.n,
            self.shape(),
            self.source,
            self.format,
            self.num_classes()
        )
    }
}

/// Reads the `split` of the dataset at `path`, checking every image against `expected`.
///
/// The format is detected from what `path` holds:
/// - IDX: a folder with `train-images-idx3-ubyte` / `t10k-images-idx3-ubyte` (optionally `.gz`) and the
///   matching `*-labels-idx1-ubyte` file, or one images file (the labels file is found next to it);
/// - CIFAR-10: a folder (or its `cifar-10-batches-bin/` sub-folder) with `data_batch_1.bin`..`data_batch_5.bin`
///   / `test_batch.bin`, or one `.bin` batch file (the split is then ignored);
/// - ImageFolder: a folder of class sub-folders holding PNG/JPEG files (class names sorted → labels), or a
///   folder with `train/` and `test/` sub-folders of that layout.
///
/// IDX and CIFAR-10 images must match `expected` exactly. ImageFolder images must have its size; a grayscale
/// image is replicated into 3 channels and an RGB image whose channels are all equal becomes 1 channel, any
/// other channel difference is an error.
///
/// Reading stays within [`DataLimits::default`]; see [`load_dataset_with_limits`].
pub fn load_dataset(path: &Path, split: Split, expected: ImageShape) -> Result<ImageSet, DataError> {
    load_dataset_with_limits(path, split, expected, &DataLimits::default())
}

/// [`load_dataset`] within `limits`: the image count (from IDX headers, CIFAR-10 file sizes or the
/// number of ImageFolder files) and every PNG/JPEG file's size and header dimensions are checked
/// before anything is decoded.
pub fn load_dataset_with_limits(
    path: &Path,
    split: Split,
    expected: ImageShape,
    limits: &DataLimits,
) -> Result<ImageSet, DataError> {
    match locate(path, split)? {
        Source::Idx { images, labels } => {
            let labels = match labels {
                Some(l) => l,
                None => idx::labels_path_for(&images)?,
            };
            idx::load_files(&images, &labels, expected, limits)
        }
        Source::Cifar(files) => cifar::load_files(&files, path, expected, limits),
        Source::Folder => folder::load(path, split, expected, limits),
    }
}

/// Which reader serves a `--data` path, and the files it reads.
enum Source {
    /// IDX files: the images file, and the labels file where the folder names it (`None` for a single
    /// images file, whose labels file is derived from its name when read).
    Idx { images: PathBuf, labels: Option<PathBuf> },
    /// CIFAR-10 binary batches.
    Cifar(Vec<PathBuf>),
    /// An ImageFolder.
    Folder,
}

/// The reader for `path` and `split`: a single IDX images file or CIFAR-10 batch, or a folder holding IDX
/// files, CIFAR-10 batches, or class folders (an ImageFolder), looked for in that order.
fn locate(path: &Path, split: Split) -> Result<Source, DataError> {
    if check_dataset_path(path)? {
        let name = file_name(path);
        if name.contains("idx3-ubyte") {
            return Ok(Source::Idx { images: path.to_path_buf(), labels: None });
        }
        if name.ends_with(".bin") {
            return Ok(Source::Cifar(vec![path.to_path_buf()]));
        }
        return Err(DataError::UnknownLayout {
            path: path.to_path_buf(),
            problem: "not an IDX images file (*-images-idx3-ubyte[.gz]) nor a CIFAR-10 batch (*.bin)".into(),
        });
    }
    if let Some((images, labels)) = idx::find_in_dir(path, split) {
        return Ok(Source::Idx { images, labels: Some(labels) });
    }
    if let Some(files) = cifar::find_in_dir(path, split)? {
        return Ok(Source::Cifar(files));
    }
    Ok(Source::Folder)
}

/// The size of the images a dataset holds, read without loading it (for a model whose input leaves its
/// size open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NativeSize {
    /// Channels, where the format fixes them (IDX 1, CIFAR-10 3; an ImageFolder gives the model's).
    pub channels: Option<usize>,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

/// The size of the training images at `path`: an IDX images file's header, CIFAR-10's 3×32×32, or an
/// ImageFolder's first training image (its header). An error where the data cannot be read that far.
pub fn native_size(path: &Path, limits: &DataLimits) -> Result<NativeSize, DataError> {
    match locate(path, Split::Train)? {
        Source::Idx { images, .. } => {
            idx::image_size(&images).map(|(height, width)| NativeSize { channels: Some(1), height, width })
        }
        Source::Cifar(_) => {
            Ok(NativeSize { channels: Some(cifar::SHAPE.c), height: cifar::SHAPE.h, width: cifar::SHAPE.w })
        }
        Source::Folder => {
            let (height, width) = folder::first_image_size(path, Split::Train, limits)?;
            Ok(NativeSize { channels: None, height, width })
        }
    }
}

/// Whether a file of this name may be read as data by some reader: IDX files (`*-ubyte`, `*-ubyte.gz`),
/// CIFAR-10 batches and their `batches.meta.txt`, and the images of an ImageFolder (PNG, JPEG). An
/// output inside a `--data` folder is refused only over such a file, so that a report kept beside the
/// data can be written again.
pub fn is_dataset_file_name(path: &Path) -> bool {
    let name = file_name(path).to_ascii_lowercase();
    let image = path
        .extension()
        .is_some_and(|e| folder::EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str()));
    name.contains("-ubyte") || name.ends_with(".bin") || name == "batches.meta.txt" || image
}

/// The files a reader opens beside a single `--data` file: an IDX images file's labels file, a CIFAR-10
/// batch's `batches.meta.txt` (those present; none for a folder, whose files
/// [`is_dataset_file_name`] names). No output may be written over them.
pub fn companion_files(data: &Path) -> Vec<PathBuf> {
    if !data.is_file() {
        return Vec::new();
    }
    let labels = idx::labels_path_for(data).ok().filter(|l| l != data);
    let meta = file_name(data).ends_with(".bin").then(|| data.with_file_name("batches.meta.txt"));
    labels.into_iter().chain(meta).filter(|p| p.exists()).collect()
}

/// Checks that a dataset path exists and is a folder or a regular file (links followed); true for a file.
pub fn check_dataset_path(path: &Path) -> Result<bool, DataError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| DataError::Missing { path: path.to_path_buf(), problem: crate::fsio::io_text(&e) })?;
    if !meta.is_file() && !meta.is_dir() {
        let kind = crate::fsio::kind_of(&meta.file_type());
        return Err(DataError::Missing { path: path.to_path_buf(), problem: format!("is {kind}") });
    }
    Ok(meta.is_file())
}

/// The file name of `path` as a string (empty when it has none).
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Refuses more than `limits.max_images` images.
pub(crate) fn check_image_count(path: &Path, n: usize, limits: &DataLimits) -> Result<(), DataError> {
    if n > limits.max_images {
        return Err(DataError::limit(
            path,
            format!("{n} images, above the limit of {} images per split (DataLimits::max_images)", limits.max_images),
        ));
    }
    Ok(())
}

/// Checks that `n` images of `shape` fit [`MAX_DATASET_VALUES`] and `limits.max_images`, returning
/// the value count.
pub(crate) fn checked_values(
    path: &Path,
    n: usize,
    shape: ImageShape,
    limits: &DataLimits,
) -> Result<usize, DataError> {
    check_image_count(path, n, limits)?;
    n.checked_mul(shape.len()).filter(|&v| v <= MAX_DATASET_VALUES).ok_or_else(|| {
        DataError::malformed(path, format!("{n} images of {shape} exceed the limit of {MAX_DATASET_VALUES} values"))
    })
}
