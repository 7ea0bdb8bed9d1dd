//! Visual evidence as PNG files: the t-SNE scatter (clean vs translated, coloured by cluster), grids of
//! images (translated images per cluster, where a trigger becomes visible), per-class bar charts (reach rates)
//! and Neural Cleanse masks. Plots are drawn with plotters into memory using the embedded DejaVu Sans font,
//! then written atomically.

use std::io::Cursor;
use std::path::Path;
use std::sync::Once;

use image::{ImageFormat, RgbImage};
use plotters::backend::BitMapBackend;
use plotters::chart::{ChartBuilder, SeriesLabelPosition};
use plotters::coord::Shift;
use plotters::drawing::{DrawingArea, IntoDrawingArea};
use plotters::element::{Circle, IntoDynElement, TriangleMarker};
use plotters::series::{Histogram, LineSeries};
use plotters::style::{register_font, Color, FontStyle, RGBColor, BLACK, WHITE};

use super::{write_atomic, ReportError};

/// DejaVu Sans (Bitstream Vera licence, see `assets/DejaVuSans-LICENSE.txt`), embedded so that plots need no
/// system font.
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// Font family name the plots use.
const FAMILY: &str = "sans-serif";
/// Plot size in pixels (width, height).
pub const PLOT_SIZE: (u32, u32) = (800, 600);
/// Pixel size of a plot's title (the longest titles, about 75 characters, just fit the plot's width). The
/// page shows a plot 560 pixels wide (0.7×), where the axis labels must still read as body text.
const CAPTION_PX: u32 = 22;
/// Pixel size of the axis labels (14 on the page).
const LABEL_PX: u32 = 20;
/// Pixel size of the legend's text.
const LEGEND_PX: u32 = 18;
/// Colour of points whose cluster is `usize::MAX` (noise).
const NOISE: RGBColor = RGBColor(150, 150, 150);
/// Cluster colours (the "tab10" palette), cycled.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Registers the embedded font once per process.
fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TTF committed with the crate; a failure would only lose text in plots.
        let _ = register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// A chart on `root` with the plots' caption style and margin, and `x_area` and `y_area` pixels for the
/// x- and y-axis labels.
fn titled_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    title: &str,
    x_area: u32,
    y_area: u32,
) -> ChartBuilder<'a, 'b, BitMapBackend<'b>> {
    let mut chart = ChartBuilder::on(root);
    chart.caption(title, (FAMILY, CAPTION_PX)).margin(12).x_label_area_size(x_area).y_label_area_size(y_area);
    chart
}

/// Colour of cluster `k`.
fn cluster_color(k: usize) -> RGBColor {
    if k == usize::MAX {
        NOISE
    } else {
        PALETTE[k % PALETTE.len()]
    }
}

/// An [`ReportError::InvalidInput`] for `path`.
fn invalid(path: &Path, problem: impl Into<String>) -> ReportError {
    ReportError::InvalidInput { what: path.display().to_string(), problem: problem.into() }
}

/// Encodes an RGB buffer as PNG and writes it atomically.
fn save_rgb(path: &Path, width: u32, height: u32, rgb: Vec<u8>) -> Result<(), ReportError> {
    let img = RgbImage::from_raw(width, height, rgb).ok_or_else(|| invalid(path, "pixel buffer size mismatch"))?;
    let mut png = Cursor::new(Vec::new());
    img.write_to(&mut png, ImageFormat::Png)
        .map_err(|e| ReportError::Plot { path: path.to_path_buf(), problem: e.to_string() })?;
    write_atomic(path, &png.into_inner())
}

/// Draws with plotters into an RGB buffer of [`PLOT_SIZE`] and saves it as PNG.
fn plot_png<F>(path: &Path, draw: F) -> Result<(), ReportError>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
{
    ensure_font();
    let (w, h) = PLOT_SIZE;
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let plot_err = |problem: String| ReportError::Plot { path: path.to_path_buf(), problem };
        root.fill(&WHITE).map_err(|e| plot_err(e.to_string()))?;
        draw(&root).map_err(plot_err)?;
        root.present().map_err(|e| plot_err(e.to_string()))?;
    }
    save_rgb(path, w, h, buf)
}

/// `[min, max]` widened by 5 % (and to a unit interval when flat).
fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !lo.is_finite() || !hi.is_finite() {
        return -1.0..1.0;
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 0.5 };
    (lo - pad)..(hi + pad)
}

/// Writes a scatter plot of 2-D points to `path` (PNG, [`PLOT_SIZE`]): colour = `clusters[i]`
/// (`usize::MAX` = noise, grey), marker = circle for clean points, triangle for translated ones
/// (`translated[i]`). The legend counts each (cluster, kind) group.
pub fn scatter_png(
    path: &Path,
    points: &[[f64; 2]],
    clusters: &[usize],
    translated: &[bool],
    title: &str,
) -> Result<(), ReportError> {
    if clusters.len() != points.len() || translated.len() != points.len() {
        return Err(invalid(
            path,
            format!(
                "{} points, {} cluster labels, {} translated flags: lengths differ",
                points.len(),
                clusters.len(),
                translated.len()
            ),
        ));
    }
    if points.iter().flatten().any(|v| !v.is_finite()) {
        return Err(invalid(path, "points hold NaN or infinite coordinates"));
    }
    let mut groups: Vec<(usize, bool)> = clusters.iter().copied().zip(translated.iter().copied()).collect();
    groups.sort_unstable();
    groups.dedup();
    plot_png(path, |root| {
        let mut chart = titled_chart(root, title, 44, 72)
            .build_cartesian_2d(padded_range(points.iter().map(|p| p[0])), padded_range(points.iter().map(|p| p[1])))
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().label_style((FAMILY, LABEL_PX)).draw().map_err(|e| e.to_string())?;
        for &(k, tr) in &groups {
            let color = cluster_color(k);
            let members = (0..points.len()).filter(|&i| clusters[i] == k && translated[i] == tr);
            let count = members.clone().count();
            let name = if k == usize::MAX { "noise".to_string() } else { format!("cluster {k}") };
            let label = format!("{name}, {} ({count})", if tr { "translated" } else { "clean" });
            let anno = if tr {
                chart.draw_series(members.map(|i| TriangleMarker::new((points[i][0], points[i][1]), 5, color.filled())))
            } else {
                chart.draw_series(members.map(|i| Circle::new((points[i][0], points[i][1]), 3, color.filled())))
            }
            .map_err(|e| e.to_string())?;
            anno.label(label).legend(move |(x, y)| {
                if tr {
                    TriangleMarker::new((x + 6, y), 5, color.filled()).into_dyn()
                } else {
                    Circle::new((x + 6, y), 4, color.filled()).into_dyn()
                }
            });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FAMILY, LEGEND_PX))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())
    })
}

/// A bar chart of one value per label (e.g. per-class reach success rates), written as a PNG of
/// [`PLOT_SIZE`] by [`BarChart::write_png`].
#[derive(Debug, Clone, Copy)]
pub struct BarChart<'a> {
    /// One label per bar.
    pub labels: &'a [String],
    /// One value per bar.
    pub values: &'a [f64],
    /// `highlight[i]` draws bar `i` in red (a flagged class).
    pub highlight: &'a [bool],
    /// The title above the chart.
    pub title: &'a str,
    /// The axis top (`None`: 1.1 × the data's maximum, the threshold included).
    pub y_max: Option<f64>,
    /// A horizontal black line across the chart at this value (e.g. the fused decision's threshold).
    pub threshold: Option<f64>,
}

impl BarChart<'_> {
    /// Writes the chart to `path`; an error when the counts differ, a value or the threshold is not
    /// finite, or the file cannot be written.
    pub fn write_png(&self, path: &Path) -> Result<(), ReportError> {
        let BarChart { labels, values, highlight, title, y_max, threshold } = *self;
        if threshold.is_some_and(|t| !t.is_finite()) {
            return Err(invalid(path, "the threshold is NaN or infinite"));
        }
        if labels.len() != values.len() || highlight.len() != values.len() || values.is_empty() {
            return Err(invalid(
                path,
                format!(
                    "{} labels, {} values, {} highlight flags: need the same non-zero count",
                    labels.len(),
                    values.len(),
                    highlight.len()
                ),
            ));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(invalid(path, "values hold NaN or infinite numbers"));
        }
        let top =
            y_max.unwrap_or_else(|| values.iter().copied().fold(threshold.unwrap_or(0.0), f64::max) * 1.1).max(1e-9);
        let bottom = values.iter().copied().fold(0.0, f64::min);
        let n = values.len() as u32;
        plot_png(path, |root| {
            use plotters::coord::ranged1d::{IntoSegmentedCoord, SegmentValue};
            let mut chart = titled_chart(root, title, 48, 80)
                .build_cartesian_2d((0u32..n).into_segmented(), bottom..top)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(labels.len())
                .x_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .label_style((FAMILY, LABEL_PX))
                .draw()
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(
                    Histogram::vertical(&chart)
                        .margin(6)
                        .style_func(|x, _| {
                            let i = match x {
                                SegmentValue::Exact(i) | SegmentValue::CenterOf(i) => *i as usize,
                                SegmentValue::Last => 0,
                            };
                            if highlight.get(i).copied().unwrap_or(false) {
                                PALETTE[3].filled()
                            } else {
                                PALETTE[0].filled()
                            }
                        })
                        .data(values.iter().enumerate().map(|(i, &v)| (i as u32, v))),
                )
                .map_err(|e| e.to_string())?;
            if let Some(t) = threshold {
                chart
                    .draw_series(LineSeries::new(
                        [(SegmentValue::Exact(0u32), t), (SegmentValue::Last, t)],
                        BLACK.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }
}

/// The layout of a grid of `n` NCHW images (values in `[0, 1]`, clamped; 1 or 3 channels), written as a
/// PNG by [`ImageGrid::write_png`]: `columns` per row, each pixel upscaled `upscale`×, 2-pixel grey
/// gutters. The PNG is `columns' * (w * upscale + 2) + 2` wide, `rows * (h * upscale + 2) + 2` high,
/// `columns' = min(columns, n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageGrid {
    /// Images.
    pub n: usize,
    /// Channels per image (1 or 3).
    pub c: usize,
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
    /// Images per row, at most.
    pub columns: usize,
    /// Each image pixel becomes `upscale`×`upscale` grid pixels.
    pub upscale: usize,
}

impl ImageGrid {
    /// Writes `images` (`n · c · h · w` values) to `path`; an error when the count or the layout is
    /// wrong or the file cannot be written.
    pub fn write_png(&self, path: &Path, images: &[f32]) -> Result<(), ReportError> {
        let (width, height, rgb) = grid_rgb(path, images, self)?;
        save_rgb(path, width, height, rgb)
    }
}

/// Gutter between grid tiles, in pixels.
const GUTTER: usize = 2;
/// Largest grid side, in pixels.
const MAX_SIDE: usize = 16_384;

/// Lays out a grid of images into an RGB buffer: (width, height, bytes).
fn grid_rgb(path: &Path, images: &[f32], grid: &ImageGrid) -> Result<(u32, u32, Vec<u8>), ReportError> {
    let &ImageGrid { n, c, h, w, columns, upscale } = grid;
    if c != 1 && c != 3 {
        return Err(invalid(path, format!("{c} channels: image grids take 1 (grayscale) or 3 (RGB)")));
    }
    if n == 0 || h == 0 || w == 0 || columns == 0 || upscale == 0 {
        return Err(invalid(path, format!("empty grid: n={n}, h={h}, w={w}, columns={columns}, upscale={upscale}")));
    }
    if n.checked_mul(c * h * w) != Some(images.len()) {
        return Err(invalid(path, format!("{} values do not hold {n} images of [{c}, {h}, {w}]", images.len())));
    }
    let cols = columns.min(n);
    let rows = n.div_ceil(cols);
    let (tw, th) = (w * upscale + GUTTER, h * upscale + GUTTER);
    let (width, height) = (cols * tw + GUTTER, rows * th + GUTTER);
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(invalid(path, format!("grid of {width}×{height} pixels exceeds {MAX_SIDE}")));
    }
    let mut rgb = vec![128u8; width * height * 3];
    let plane = h * w;
    for (k, img) in images.chunks_exact(c * plane).enumerate() {
        let (x0, y0) = ((k % cols) * tw + GUTTER, (k / cols) * th + GUTTER);
        for y in 0..h * upscale {
            for x in 0..w * upscale {
                let src = (y / upscale) * w + x / upscale;
                let at = ((y0 + y) * width + x0 + x) * 3;
                for ch in 0..3 {
                    let v = img[(ch % c) * plane + src];
                    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
                    rgb[at + ch] = (v * 255.0).round() as u8;
                }
            }
        }
    }
    Ok((width as u32, height as u32, rgb))
}

/// Writes a Neural Cleanse trigger as PNG: three tiles side by side: the mask (`h * w` values, grey), the
/// pattern (`c * h * w`) and the trigger as stamped (mask × pattern), each upscaled `upscale`×.
pub fn mask_png(
    path: &Path,
    mask: &[f32],
    pattern: &[f32],
    c: usize,
    h: usize,
    w: usize,
    upscale: usize,
) -> Result<(), ReportError> {
    let plane = h * w;
    if mask.len() != plane || pattern.len() != c * plane {
        return Err(invalid(
            path,
            format!(
                "mask has {} values (expected {plane}), pattern {} (expected {})",
                mask.len(),
                pattern.len(),
                c * plane
            ),
        ));
    }
    let mut tiles = Vec::with_capacity(3 * c * plane);
    for _ in 0..c {
        tiles.extend_from_slice(mask);
    }
    tiles.extend_from_slice(pattern);
    tiles.extend(pattern.iter().enumerate().map(|(i, &p)| p * mask[i % plane]));
    ImageGrid { n: 3, c, h, w, columns: 3, upscale }.write_png(path, &tiles)
}
