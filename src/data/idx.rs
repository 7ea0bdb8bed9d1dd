//! IDX files (MNIST, Fashion-MNIST): raw or gzip, `u8` images of rank 3 and `u8` labels of rank 1.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::{
    check_image_count, checked_values, file_name, DataError, DataLimits, DatasetFormat, ImageSet, ImageShape, Split,
};

/// IDX element type code for unsigned bytes, the only one datasets use.
const TYPE_U8: u8 = 0x08;

/// The images and labels file names of a split, without the optional `.gz`.
fn split_names(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
}

/// `dir/name` or `dir/name.gz`, whichever exists (raw first).
fn raw_or_gz(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))].into_iter().find(|p| p.is_file())
}

/// The images and labels files of `split` in `dir`, when the images file is there.
/// The labels path is returned even when missing, so that loading names it.
pub(super) fn find_in_dir(dir: &Path, split: Split) -> Option<(PathBuf, PathBuf)> {
    let (images, labels) = split_names(split);
    let images = raw_or_gz(dir, images)?;
    let gz = images.extension().is_some_and(|e| e == "gz");
    let labels = raw_or_gz(dir, labels)
        .unwrap_or_else(|| dir.join(if gz { format!("{labels}.gz") } else { labels.to_string() }));
    Some((images, labels))
}

/// The labels file that goes with an images file (`*-images-idx3-ubyte*` → `*-labels-idx1-ubyte*`).
pub(super) fn labels_path_for(images: &Path) -> Result<PathBuf, DataError> {
    let name = file_name(images);
    let labels = name.replacen("images-idx3", "labels-idx1", 1);
    if labels == name {
        return Err(DataError::UnknownLayout {
            path: images.to_path_buf(),
            problem: "cannot derive the labels file name (expected '*-images-idx3-ubyte[.gz]')".into(),
        });
    }
    let candidate = images.with_file_name(&labels);
    if candidate.is_file() {
        return Ok(candidate);
    }
    // Accept the other compression of the labels file.
    let alt = match labels.strip_suffix(".gz") {
        Some(raw) => images.with_file_name(raw),
        None => images.with_file_name(format!("{labels}.gz")),
    };
    Ok(if alt.is_file() { alt } else { candidate })
}

/// A parsed IDX file: dimensions and `u8` data.
struct Idx {
    dims: Vec<usize>,
    data: Vec<u8>,
}

/// Opens `path`, decompressing when it starts with the gzip magic.
fn open(path: &Path) -> Result<Box<dyn Read>, DataError> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut file, &mut magic).map_err(|e| DataError::io(path, e))?;
    let head = std::io::Cursor::new(magic[..got].to_vec());
    let reader = BufReader::new(head.chain(file));
    Ok(if got == 2 && magic == [0x1f, 0x8b] { Box::new(GzDecoder::new(reader)) } else { Box::new(reader) })
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            k => filled += k,
        }
    }
    Ok(filled)
}

/// Reads an IDX file of `u8` elements whose rank is `rank`, checking the header (and its first
/// dimension, the item count, against `limits.max_images`) before reading the data.
fn read_idx(path: &Path, rank: usize, limits: &DataLimits) -> Result<Idx, DataError> {
    let mut r = open(path)?;
    let io = |e: std::io::Error| DataError::malformed(path, format!("cannot decompress or read: {e}"));
    let mut magic = [0u8; 4];
    if read_up_to(&mut r, &mut magic).map_err(io)? < 4 {
        return Err(DataError::malformed(path, "truncated: shorter than the 4-byte IDX magic"));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(DataError::malformed(
            path,
            format!("wrong magic {magic:02x?}: an IDX file starts with two zero bytes"),
        ));
    }
    if magic[2] != TYPE_U8 {
        return Err(DataError::malformed(
            path,
            format!("element type 0x{:02x}, expected 0x08 (unsigned byte)", magic[2]),
        ));
    }
    if usize::from(magic[3]) != rank {
        return Err(DataError::malformed(path, format!("rank {}, expected {rank}", magic[3])));
    }
    let mut header = vec![0u8; 4 * rank];
    if read_up_to(&mut r, &mut header).map_err(io)? < header.len() {
        return Err(DataError::malformed(path, "truncated header (dimension sizes)"));
    }
    let dims: Vec<usize> =
        header.chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    let total = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&t| t <= super::MAX_DATASET_VALUES)
        .ok_or_else(|| DataError::malformed(path, format!("absurd dimensions {dims:?} in the header")))?;
    check_image_count(path, dims[0], limits)?;
    // The buffer grows with the data actually present, never to a size the header alone asks for.
    let mut data = Vec::new();
    r.by_ref().take(total as u64).read_to_end(&mut data).map_err(io)?;
    if data.len() < total {
        return Err(DataError::malformed(
            path,
            format!("truncated: header {dims:?} needs {total} data bytes, found {}", data.len()),
        ));
    }
    let mut extra = [0u8; 1];
    if read_up_to(&mut r, &mut extra).map_err(io)? > 0 {
        return Err(DataError::malformed(
            path,
            format!("trailing bytes after the {total} data bytes of header {dims:?}"),
        ));
    }
    Ok(Idx { dims, data })
}

/// Reads an IDX images file and its labels file into an [`ImageSet`] checked against `expected`.
pub(super) fn load_files(
    images: &Path,
    labels: &Path,
    expected: ImageShape,
    limits: &DataLimits,
) -> Result<ImageSet, DataError> {
    if !labels.is_file() {
        return Err(DataError::io(
            labels,
            std::io::Error::new(std::io::ErrorKind::NotFound, "IDX labels file not found"),
        ));
    }
    // Check the header shape before reading any pixel data.
    let img = read_idx(images, 3, limits)?;
    let (n, h, w) = (img.dims[0], img.dims[1], img.dims[2]);
    let found = ImageShape::new(1, h, w);
    if found != expected {
        return Err(DataError::shape(
            images,
            format!("IDX images are {found} (grayscale), the model expects {expected}"),
        ));
    }
    if n == 0 {
        return Err(DataError::malformed(images, "holds no image"));
    }
    checked_values(images, n, found, limits)?;
    let lab = read_idx(labels, 1, limits)?;
    if lab.dims[0] != n {
        return Err(DataError::malformed(
            labels,
            format!("{} labels for {n} images in {}", lab.dims[0], images.display()),
        ));
    }
    Ok(ImageSet {
        n,
        c: 1,
        h,
        w,
        pixels: img.data.iter().map(|&b| f32::from(b) / 255.0).collect(),
        labels: lab.data.iter().map(|&b| i64::from(b)).collect(),
        class_names: Vec::new(),
        source: images.display().to_string(),
        format: DatasetFormat::Idx,
    })
}
