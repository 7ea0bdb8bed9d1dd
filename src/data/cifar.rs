//! CIFAR-10 binary batches: records of one label byte then 3×32×32 bytes (R, G, B planes).

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{checked_values, file_name, DataError, DataLimits, DatasetFormat, ImageSet, ImageShape, Split};

/// Shape of one CIFAR-10 image.
pub(super) const SHAPE: ImageShape = ImageShape { c: 3, h: 32, w: 32 };
/// Bytes per record: the label byte and the pixels.
const RECORD: usize = 1 + 3 * 32 * 32;
/// Number of CIFAR-10 classes (labels must be below it).
const CLASSES: u8 = 10;

/// The batch files of `split` in `dir` (or in its `cifar-10-batches-bin/`), `None` when `dir` holds no
/// CIFAR-10 batch at all.
pub(super) fn find_in_dir(dir: &Path, split: Split) -> Result<Option<Vec<PathBuf>>, DataError> {
    let nested = dir.join("cifar-10-batches-bin");
    let dir = if nested.is_dir() { nested } else { dir.to_path_buf() };
    // Any entry of those names counts (a FIFO too), so that reading it names it.
    let present = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    let is_cifar = present(&dir.join("test_batch.bin")) || present(&dir.join("data_batch_1.bin"));
    if !is_cifar {
        return Ok(None);
    }
    let files: Vec<PathBuf> = match split {
        Split::Test => vec![dir.join("test_batch.bin")],
        Split::Train => {
            let mut batches: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
                .map_err(|e| DataError::io(&dir, e))?
                .filter_map(|entry| {
                    let path = entry.ok()?.path();
                    let name = file_name(&path);
                    let k = name.strip_prefix("data_batch_")?.strip_suffix(".bin")?.parse().ok()?;
                    Some((k, path))
                })
                .collect();
            batches.sort();
            batches.into_iter().map(|(_, p)| p).collect()
        }
    };
    if files.is_empty() || !files.iter().all(|f| present(f)) {
        return Err(DataError::UnknownLayout {
            path: dir,
            problem: format!(
                "CIFAR-10 folder without its {} batch ({})",
                split.name(),
                match split {
                    Split::Train => "data_batch_*.bin",
                    Split::Test => "test_batch.bin",
                }
            ),
        });
    }
    Ok(Some(files))
}

/// Class names from `batches.meta.txt` next to the first batch, when it is there and lists 10 names.
fn class_names(first: &Path) -> Vec<String> {
    let meta = first.with_file_name("batches.meta.txt");
    // Optional: anything that is not a small regular text file is ignored.
    let Ok(text) = crate::fsio::read_text(&meta, 1 << 16, "a CIFAR-10 meta file") else {
        return Vec::new();
    };
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    if names.len() == usize::from(CLASSES) {
        names
    } else {
        Vec::new()
    }
}

/// Reads CIFAR-10 batch files into an [`ImageSet`] checked against `expected`.
pub(super) fn load_files(
    files: &[PathBuf],
    source: &Path,
    expected: ImageShape,
    limits: &DataLimits,
) -> Result<ImageSet, DataError> {
    if expected != SHAPE {
        return Err(DataError::shape(
            source,
            format!("CIFAR-10 images are {SHAPE} (RGB), the model expects {expected}"),
        ));
    }
    // Every batch opened once (a regular file) and sized before any record is read.
    let mut opened = Vec::with_capacity(files.len());
    let mut available = 0usize;
    for file in files {
        let (handle, len) = crate::fsio::open_input(file)?;
        let len = usize::try_from(len).map_err(|_| DataError::malformed(file, "file too large"))?;
        if len == 0 || len % RECORD != 0 {
            return Err(DataError::malformed(
                file,
                format!("size {len} bytes is not a positive multiple of the {RECORD}-byte CIFAR-10 record"),
            ));
        }
        available += len / RECORD;
        checked_values(file, available, SHAPE, limits)?;
        opened.push((file, handle, len / RECORD));
    }
    // Only the records kept are read (a seeded sample when the batches hold more than MAX_KEPT_VALUES).
    let kept = super::kept_indices(available, SHAPE, limits);
    let n = kept.as_ref().map_or(available, Vec::len);
    let mut pixels = Vec::with_capacity(n * SHAPE.len());
    let mut labels = Vec::with_capacity(n);
    let mut record = vec![0u8; RECORD];
    let mut wanted = kept.as_deref().map(|k| k.iter().peekable());
    let mut first = 0usize;
    for (file, handle, records) in &opened {
        let mut reader = std::io::BufReader::with_capacity(1 << 20, handle);
        for i in 0..*records {
            let global = first + i;
            let take = match wanted.as_mut() {
                None => true,
                Some(it) => it.next_if_eq(&&global).is_some(),
            };
            if !take {
                continue;
            }
            if wanted.is_some() {
                handle.read_exact_at(&mut record, (i * RECORD) as u64)
            } else {
                reader.read_exact(&mut record)
            }
            .map_err(|_| DataError::malformed(file, "file changed while being read"))?;
            if record[0] >= CLASSES {
                return Err(DataError::malformed(
                    file,
                    format!("record {i}: label {} is not a CIFAR-10 class (0..=9)", record[0]),
                ));
            }
            labels.push(i64::from(record[0]));
            pixels.extend(record[1..].iter().map(|&b| f32::from(b) / 255.0));
        }
        first += records;
    }
    Ok(ImageSet {
        n: labels.len(),
        available,
        c: SHAPE.c,
        h: SHAPE.h,
        w: SHAPE.w,
        pixels,
        labels,
        class_names: class_names(&files[0]),
        source: source.display().to_string(),
        format: DatasetFormat::Cifar10,
    })
}
