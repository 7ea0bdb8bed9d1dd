//! IDX files (MNIST, Fashion-MNIST): raw or gzip, `u8` images of rank 3 and labels of rank 1, `u8` or,
//! for more than 256 classes, big-endian `i16` or `i32` (the IDX types 0x0B and 0x0C).

use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::{
    check_image_count, checked_values, file_name, DataError, DataLimits, DatasetFormat, ImageSet, ImageShape, Split,
};

/// IDX element type code for unsigned bytes (images, and labels of up to 256 classes).
const TYPE_U8: u8 = 0x08;
/// IDX element type codes for big-endian signed 16- and 32-bit integers (labels of more classes).
const TYPE_I16: u8 = 0x0B;
const TYPE_I32: u8 = 0x0C;

/// Bytes per element of an IDX type this reader takes.
fn element_size(kind: u8) -> usize {
    match kind {
        TYPE_I16 => 2,
        TYPE_I32 => 4,
        _ => 1,
    }
}

/// The images and labels file names of a split, without the optional `.gz`.
fn split_names(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
}

/// `dir/name` or `dir/name.gz`, whichever exists (raw first).
fn raw_or_gz(dir: &Path, name: &str) -> Option<PathBuf> {
    // Any directory entry of that name counts (a FIFO or a dangling link too), so that reading it names it.
    [dir.join(name), dir.join(format!("{name}.gz"))].into_iter().find(|p| std::fs::symlink_metadata(p).is_ok())
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
    if std::fs::symlink_metadata(&candidate).is_ok() {
        return Ok(candidate);
    }
    // Accept the other compression of the labels file.
    let alt = match labels.strip_suffix(".gz") {
        Some(raw) => images.with_file_name(raw),
        None => images.with_file_name(format!("{labels}.gz")),
    };
    Ok(if std::fs::symlink_metadata(&alt).is_ok() { alt } else { candidate })
}

/// A parsed IDX file: dimensions, the element type and the raw (big-endian) data of the items kept.
struct Idx {
    dims: Vec<usize>,
    kind: u8,
    data: Vec<u8>,
}

/// An IDX file opened once (a regular file, `fsio::open_input`), decompressed when it starts with the
/// gzip magic, with what its size on disk allows: the exact size for a raw file, the gzip trailer's
/// ISIZE (the inflated size mod 2^32) for a compressed one.
struct Opened {
    reader: Box<dyn Read>,
    disk_len: u64,
    gzip_isize: Option<u32>,
}

/// Opens `path` (see [`Opened`]).
fn open(path: &Path) -> Result<Opened, DataError> {
    let (mut file, disk_len) = crate::fsio::open_input(path)?;
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut file, &mut magic).map_err(|e| DataError::io(path, e))?;
    let gz = got == 2 && magic == [0x1f, 0x8b];
    let gzip_isize = if gz && disk_len >= 18 {
        let mut trailer = [0u8; 4];
        file.read_exact_at(&mut trailer, disk_len - 4).map_err(|e| DataError::io(path, e))?;
        Some(u32::from_le_bytes(trailer))
    } else {
        None
    };
    let head = std::io::Cursor::new(magic[..got].to_vec());
    let reader = BufReader::new(head.chain(file));
    let reader: Box<dyn Read> = if gz { Box::new(GzDecoder::new(reader)) } else { Box::new(reader) };
    Ok(Opened { reader, disk_len, gzip_isize })
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

/// Height and width of the images of an IDX images file, from its header alone (unsigned bytes, rank 3).
pub(super) fn image_size(path: &Path) -> Result<(usize, usize), DataError> {
    let Opened { reader: mut r, .. } = open(path)?;
    let mut header = [0u8; 16];
    let got = read_up_to(&mut r, &mut header)
        .map_err(|e| DataError::malformed(path, format!("cannot decompress or read: {e}")))?;
    if got < 16 || header[..4] != [0, 0, 0x08, 3] {
        return Err(DataError::malformed(path, "not an IDX images file (magic 00 00 08 03 and three sizes)"));
    }
    let dim = |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]) as usize;
    match (dim(8), dim(12)) {
        (0, _) | (_, 0) => Err(DataError::malformed(path, "images of height or width 0 in the header")),
        size => Ok(size),
    }
}

/// Reads an IDX file of `u8` elements whose rank is `rank`, keeping the items (slices along the first
/// dimension) `keep` lists (sorted; `None`: all). The header is checked first: its item count against
/// `limits.max_images`, and the data size it promises against the file's size (raw) or the gzip
/// trailer (compressed), so that a header promising more than the file holds is refused before
/// anything is allocated; only the kept items are stored.
fn read_idx(
    path: &Path,
    rank: usize,
    kinds: &[u8],
    limits: &DataLimits,
    keep: impl FnOnce(&[usize]) -> Result<Option<Vec<usize>>, DataError>,
) -> Result<Idx, DataError> {
    let Opened { reader: mut r, disk_len, gzip_isize } = open(path)?;
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
    if !kinds.contains(&magic[2]) {
        let expected = if kinds.len() == 1 {
            "0x08 (unsigned byte)"
        } else {
            "0x08 (unsigned byte), 0x0B (16-bit integer) or 0x0C (32-bit integer)"
        };
        return Err(DataError::malformed(path, format!("element type 0x{:02x}, expected {expected}", magic[2])));
    }
    let size = element_size(magic[2]);
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
        .try_fold(size, |acc, &d| acc.checked_mul(d))
        .filter(|&t| t <= super::MAX_DATASET_VALUES * size)
        .ok_or_else(|| DataError::malformed(path, format!("absurd dimensions {dims:?} in the header")))?;
    check_image_count(path, dims[0], limits)?;
    let whole = (4 + 4 * rank + total) as u64;
    match gzip_isize {
        None if disk_len != whole => {
            let what = if disk_len < whole { "truncated" } else { "trailing bytes" };
            return Err(DataError::malformed(
                path,
                format!("{what}: header {dims:?} needs {whole} bytes, the file has {disk_len}"),
            ));
        }
        Some(isize) if u64::from(isize) != whole % (1 << 32) => {
            return Err(DataError::malformed(
                path,
                format!(
                    "does not decompress to what its header promises: header {dims:?} needs {whole} bytes, the \
                     gzip trailer says the file inflates to {isize} (mod 2^32)"
                ),
            ));
        }
        _ => {}
    }
    let n = dims[0];
    let item = total.checked_div(n).unwrap_or(0);
    let kept = keep(&dims)?;
    let mut data = Vec::with_capacity(kept.as_ref().map_or(total, |k| k.len() * item).min(1 << 26));
    let mut buf = vec![0u8; item.clamp(1, 1 << 20)];
    let mut next = kept.as_deref().map(|k| k.iter().peekable());
    for i in 0..n {
        let keep_this = match next.as_mut() {
            None => true,
            Some(it) => it.next_if_eq(&&i).is_some(),
        };
        let mut left = item;
        while left > 0 {
            let chunk = left.min(buf.len());
            let got = read_up_to(&mut r, &mut buf[..chunk]).map_err(io)?;
            if got < chunk {
                return Err(DataError::malformed(
                    path,
                    format!("truncated: header {dims:?} needs {total} data bytes, the data ends in item {i}"),
                ));
            }
            if keep_this {
                data.extend_from_slice(&buf[..chunk]);
            }
            left -= chunk;
        }
    }
    let mut extra = [0u8; 1];
    if read_up_to(&mut r, &mut extra).map_err(io)? > 0 {
        return Err(DataError::malformed(
            path,
            format!("trailing bytes after the {total} data bytes of header {dims:?}"),
        ));
    }
    Ok(Idx { dims, kind: magic[2], data })
}

/// The labels of an IDX labels file, whatever its element type.
fn label_values(lab: &Idx) -> Vec<i64> {
    match lab.kind {
        TYPE_I16 => lab.data.chunks_exact(2).map(|b| i64::from(i16::from_be_bytes([b[0], b[1]]))).collect(),
        TYPE_I32 => lab.data.chunks_exact(4).map(|b| i64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))).collect(),
        _ => lab.data.iter().map(|&b| i64::from(b)).collect(),
    }
}

/// Reads an IDX images file and its labels file into an [`ImageSet`] checked against `expected`.
pub(super) fn load_files(
    images: &Path,
    labels: &Path,
    expected: ImageShape,
    limits: &DataLimits,
) -> Result<ImageSet, DataError> {
    if std::fs::metadata(labels).is_err() {
        return Err(DataError::malformed(labels, "IDX labels file not found"));
    }
    // The header's shape is checked before any pixel is read; the images kept are chosen from it.
    let mut kept = None;
    let img = read_idx(images, 3, &[TYPE_U8], limits, |dims| {
        let (n, found) = (dims[0], ImageShape::new(1, dims[1], dims[2]));
        if found != expected {
            return Err(DataError::shape(
                images,
                format!("IDX images are {found} (grayscale), the model expects {expected}"),
            ));
        }
        kept = super::kept_indices(n, found, limits);
        Ok(kept.clone())
    })?;
    let (n, h, w) = (img.dims[0], img.dims[1], img.dims[2]);
    if n == 0 {
        return Err(DataError::malformed(images, "holds no image"));
    }
    checked_values(images, img.data.len() / (h * w).max(1), ImageShape::new(1, h, w), limits)?;
    let lab = read_idx(labels, 1, &[TYPE_U8, TYPE_I16, TYPE_I32], limits, |_| Ok(None))?;
    if lab.dims[0] != n {
        return Err(DataError::malformed(
            labels,
            format!("{} labels for {n} images in {}", lab.dims[0], images.display()),
        ));
    }
    let all = label_values(&lab);
    if let Some((i, l)) = all.iter().enumerate().find(|(_, &l)| l < 0) {
        return Err(DataError::malformed(labels, format!("label {l} of image {i} is negative")));
    }
    let labels: Vec<i64> = match &kept {
        None => all,
        Some(idx) => idx.iter().map(|&i| all[i]).collect(),
    };
    Ok(ImageSet {
        n: labels.len(),
        available: n,
        c: 1,
        h,
        w,
        pixels: img.data.iter().map(|&b| f32::from(b) / 255.0).collect(),
        labels,
        class_names: Vec::new(),
        source: images.display().to_string(),
        format: DatasetFormat::Idx,
    })
}
