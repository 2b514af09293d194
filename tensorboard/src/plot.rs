//! PNG bar plots of predicted PMFs, for TensorBoard's image tab: a title, the bars, a light probability scale and
//! an x axis in action units (continuous actions) or action labels (discrete actions), text in an 8×8 bitmap font.

use font8x8::UnicodeFonts;

/// An encoded PNG image.
#[derive(Debug, Clone)]
pub struct Png {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The PNG file bytes.
    pub bytes: Vec<u8>,
}

/// What the bins of a PMF plot stand for.
#[derive(Debug, Clone, PartialEq)]
pub enum BinAxis {
    /// Bin indices only.
    Index,
    /// The bins evenly cover `[low, high]` in action units.
    Range {
        /// Lower edge of the first bin.
        low: f64,
        /// Upper edge of the last bin.
        high: f64,
    },
    /// One label per bin (discrete actions).
    Labels(Vec<String>),
}

/// The title and x axis of a PMF plot.
#[derive(Debug, Clone, PartialEq)]
pub struct PmfLabels {
    /// Printed above the plot (ASCII; other characters print as `?`).
    pub title: String,
    /// The x axis.
    pub axis: BinAxis,
}

const WIDTH: usize = 400;
const HEIGHT: usize = 220;
const LEFT: usize = 48;
const RIGHT: usize = 12;
const TOP: usize = 22;
const BOTTOM: usize = 30;
const GLYPH: usize = 8;

const BAR: [u8; 3] = [31, 119, 180];
const MARK: [u8; 3] = [214, 39, 40];
const INK: [u8; 3] = [0, 0, 0];
const GRID: [u8; 3] = [225, 225, 225];
const SCALE: [u8; 3] = [120, 120, 120];

struct Canvas {
    rgb: Vec<u8>,
}

impl Canvas {
    fn new() -> Self {
        Canvas { rgb: vec![255u8; WIDTH * HEIGHT * 3] }
    }

    fn put(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < WIDTH && y < HEIGHT {
            let i = (y * WIDTH + x) * 3;
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    /// `text` with its top-left corner at `(x, y)`.
    fn text(&mut self, x: usize, y: usize, text: &str, c: [u8; 3]) {
        for (k, ch) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS.get(ch).or_else(|| font8x8::BASIC_FONTS.get('?')).unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..GLYPH {
                    if bits >> col & 1 == 1 {
                        self.put(x + k * GLYPH + col, y + row, c);
                    }
                }
            }
        }
    }

    /// A straight line from `a` to `b`, one pixel wide.
    fn segment(&mut self, a: (usize, usize), b: (usize, usize), c: [u8; 3]) {
        let steps = a.0.abs_diff(b.0).max(a.1.abs_diff(b.1)).max(1);
        for k in 0..=steps {
            let t = k as f64 / steps as f64;
            let x = a.0 as f64 + (b.0 as f64 - a.0 as f64) * t;
            let y = a.1 as f64 + (b.1 as f64 - a.1 as f64) * t;
            self.put(x.round() as usize, y.round() as usize, c);
        }
    }

    /// `text` centred on `x`, kept inside the image.
    fn text_centred(&mut self, x: usize, y: usize, text: &str, c: [u8; 3]) {
        let w = text.chars().count() * GLYPH;
        let left = x.saturating_sub(w / 2).min(WIDTH.saturating_sub(w));
        self.text(left, y, text, c);
    }
}

/// A bar plot of `pmf` (one bar per bin, scaled to the largest bar) with an optional marked bin (e.g. the
/// dataset's action) drawn as a red line, without labels.
pub fn pmf_png(pmf: &[f32], marked: Option<usize>) -> Png {
    pmf_png_labelled(pmf, marked, &PmfLabels { title: String::new(), axis: BinAxis::Index })
}

/// A bar plot of `pmf` with a title, a probability scale and a labelled x axis; `marked` (e.g. the dataset's
/// action) is drawn as a red line.
pub fn pmf_png_labelled(pmf: &[f32], marked: Option<usize>, labels: &PmfLabels) -> Png {
    let mut c = Canvas::new();
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let base = HEIGHT - BOTTOM;
    let top = pmf.iter().cloned().filter(|p| p.is_finite()).fold(0.0f32, f32::max);
    let m = pmf.len().max(1);
    c.text(4, 6, &labels.title, INK);

    // Light probability scale at quarters of the largest bar.
    if top > 0.0 {
        for q in 1..=4 {
            let y = base - q * plot_h / 4;
            for x in LEFT..WIDTH - RIGHT {
                c.put(x, y, GRID);
            }
            let v = top * q as f32 / 4.0;
            c.text(2, y.saturating_sub(GLYPH / 2), &format_probability(v), SCALE);
        }
    }
    let x_of = |i: usize| LEFT + i * plot_w / m;
    for (i, &p) in pmf.iter().enumerate() {
        let (x0, x1) = (x_of(i), x_of(i + 1).max(x_of(i) + 1));
        let h = if top > 0.0 && p.is_finite() { ((p / top) * plot_h as f32).round() as usize } else { 0 };
        for x in x0..x1.saturating_sub(usize::from(x1 - x0 > 2)) {
            for y in base - h.min(plot_h)..base {
                c.put(x, y, BAR);
            }
        }
    }
    if let Some(b) = marked.filter(|&b| b < m) {
        let x = x_of(b) + plot_w / m / 2;
        for y in TOP..base {
            c.put(x, y, MARK);
        }
    }
    for x in LEFT..WIDTH - RIGHT {
        c.put(x, base, INK);
    }

    // The x axis: ticks with values.
    let label_y = base + 8;
    let tick = |c: &mut Canvas, x: usize| {
        for y in base..base + 4 {
            c.put(x, y, INK);
        }
    };
    match &labels.axis {
        BinAxis::Range { low, high } => {
            for q in 0..=4 {
                let x = LEFT + q * plot_w / 4;
                tick(&mut c, x.min(WIDTH - RIGHT - 1));
                let v = low + (high - low) * q as f64 / 4.0;
                c.text_centred(x, label_y, &format_value(v, high - low), INK);
            }
        }
        BinAxis::Labels(names) => {
            let every = names.len().div_ceil((plot_w / (4 * GLYPH)).max(1)).max(1);
            for (i, name) in names.iter().enumerate().filter(|(i, _)| i % every == 0) {
                let x = x_of(i) + plot_w / m / 2;
                tick(&mut c, x);
                let room = (plot_w / m * every / GLYPH).max(1);
                let short: String = name.chars().take(room).collect();
                c.text_centred(x, label_y, &short, INK);
            }
        }
        BinAxis::Index => {}
    }
    Png { width: WIDTH as u32, height: HEIGHT as u32, bytes: encode_rgb(&c.rgb, WIDTH as u32, HEIGHT as u32) }
}

/// A forecast's fan chart: the series' `history` as a black line, then the `median` forecast as a blue line inside
/// the shaded band from `low` to `high` (e.g. the 10% and 90% quantiles), a value scale on the left, a title above.
/// Non-finite values are skipped.
pub fn fan_png(history: &[f64], median: &[f64], low: &[f64], high: &[f64], title: &str) -> Png {
    let mut c = Canvas::new();
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let base = HEIGHT - BOTTOM;
    c.text(4, 6, title, INK);
    let all = history.iter().chain(median).chain(low).chain(high).copied().filter(|v| v.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo.is_finite() { (lo, if hi > lo { hi } else { lo + 1.0 }) } else { (0.0, 1.0) };
    let n = (history.len() + median.len()).max(2);
    let x_of = |i: usize| LEFT + i * (plot_w - 1) / (n - 1);
    let y_of = |v: f64| base - (((v - lo) / (hi - lo)) * plot_h as f64).round().clamp(0.0, plot_h as f64) as usize;
    for q in 0..=4 {
        let y = base - q * plot_h / 4;
        for x in LEFT..WIDTH - RIGHT {
            c.put(x, y, GRID);
        }
        let v = lo + (hi - lo) * q as f64 / 4.0;
        let label: String = format_value(v, hi - lo).chars().take(LEFT / GLYPH - 1).collect();
        c.text(2, y.saturating_sub(GLYPH / 2), &label, SCALE);
    }
    const BAND: [u8; 3] = [198, 219, 239];
    let start = history.len();
    for i in 0..median.len().min(low.len()).min(high.len()) {
        if !(low[i].is_finite() && high[i].is_finite()) {
            continue;
        }
        let (x0, x1) = (x_of(start + i).saturating_sub(plot_w / n / 2), x_of(start + i) + plot_w / n / 2);
        for x in x0..=x1.min(WIDTH - RIGHT - 1) {
            for y in y_of(high[i].max(low[i]))..=y_of(low[i].min(high[i])) {
                c.put(x, y, BAND);
            }
        }
    }
    let line = |c: &mut Canvas, values: &[f64], offset: usize, colour: [u8; 3]| {
        for (i, w) in values.windows(2).enumerate() {
            if w[0].is_finite() && w[1].is_finite() {
                c.segment((x_of(offset + i), y_of(w[0])), (x_of(offset + i + 1), y_of(w[1])), colour);
            }
        }
    };
    line(&mut c, history, 0, INK);
    // The median starts from the last observed value.
    let joined: Vec<f64> = history.last().into_iter().copied().chain(median.iter().copied()).collect();
    line(&mut c, &joined, start.saturating_sub(1), BAR);
    for x in LEFT..WIDTH - RIGHT {
        c.put(x, base, INK);
    }
    Png { width: WIDTH as u32, height: HEIGHT as u32, bytes: encode_rgb(&c.rgb, WIDTH as u32, HEIGHT as u32) }
}

/// A probability in at most 5 characters.
fn format_probability(p: f32) -> String {
    if p >= 0.1 { format!("{p:.2}") } else { format!("{p:.3}") }
}

/// An axis value with as many decimals as the span needs.
fn format_value(v: f64, span: f64) -> String {
    let v = if v.abs() < 1e-9 { 0.0 } else { v };
    match span.abs() {
        s if s >= 100.0 => format!("{v:.0}"),
        s if s >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

/// PNG images laid out in a grid, `rows[r][c]` at row `r`, column `c`, on white with a gap between cells (cells
/// as large as the largest image). Errors name the cell that is not an 8-bit RGB or RGBA PNG.
pub fn tile_pngs(rows: &[Vec<&[u8]>]) -> Result<Png, String> {
    const GAP: usize = 6;
    let mut decoded: Vec<Vec<(usize, usize, Vec<u8>)>> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let mut cells = Vec::new();
        for (c, bytes) in row.iter().enumerate() {
            cells.push(decode_rgb(bytes).map_err(|e| format!("image at row {r}, column {c}: {e}"))?);
        }
        decoded.push(cells);
    }
    let cells = decoded.iter().flatten();
    let cell_w = cells.clone().map(|c| c.0).max().unwrap_or(0);
    let cell_h = cells.map(|c| c.1).max().unwrap_or(0);
    let columns = decoded.iter().map(Vec::len).max().unwrap_or(0);
    if cell_w == 0 || cell_h == 0 {
        return Err("no images to lay out".into());
    }
    let width = columns * cell_w + (columns + 1) * GAP;
    let height = decoded.len() * cell_h + (decoded.len() + 1) * GAP;
    let mut rgb = vec![255u8; width * height * 3];
    for (r, row) in decoded.iter().enumerate() {
        for (c, (w, h, pixels)) in row.iter().enumerate() {
            let (x0, y0) = (GAP + c * (cell_w + GAP), GAP + r * (cell_h + GAP));
            for y in 0..*h {
                let to = ((y0 + y) * width + x0) * 3;
                rgb[to..to + w * 3].copy_from_slice(&pixels[y * w * 3..(y + 1) * w * 3]);
            }
        }
    }
    Ok(Png { width: width as u32, height: height as u32, bytes: encode_rgb(&rgb, width as u32, height as u32) })
}

/// An 8-bit RGB or RGBA PNG as (width, height, RGB bytes).
fn decode_rgb(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), String> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().map_err(|e| e.to_string())?;
    let size = reader.output_buffer_size().ok_or("image too large")?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = match (info.color_type, info.bit_depth) {
        (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
        (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
        (t, d) => return Err(format!("{t:?} {d:?} (8-bit RGB or RGBA expected)")),
    };
    let rgb = buf[..w * h * channels].chunks(channels).flat_map(|p| [p[0], p[1], p[2]]).collect();
    Ok((w, h, rgb))
}

fn encode_rgb(rgb: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("PNG header to memory");
        w.write_image_data(rgb).expect("PNG data to memory");
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiled_images_keep_every_pixel_in_its_cell() {
        let a = pmf_png(&[0.1, 0.9], Some(0));
        let b = pmf_png(&[0.5, 0.5], None);
        let grid = tile_pngs(&[vec![&a.bytes, &b.bytes], vec![&b.bytes]]).unwrap();
        let (w, h) = (a.width as usize, a.height as usize);
        assert_eq!((grid.width as usize, grid.height as usize), (2 * w + 18, 2 * h + 18));
        let (_, _, all) = decode_rgb(&grid.bytes).unwrap();
        let (_, _, pa) = decode_rgb(&a.bytes).unwrap();
        let (_, _, pb) = decode_rgb(&b.bytes).unwrap();
        let gw = grid.width as usize;
        let row = |img: &[u8], y: usize| img[y * w * 3..(y + 1) * w * 3].to_vec();
        let at = |x0: usize, y: usize| all[(y * gw + x0) * 3..(y * gw + x0 + w) * 3].to_vec();
        for y in 0..h {
            assert_eq!(at(6, 6 + y), row(&pa, y), "row {y} of cell (0, 0)");
            assert_eq!(at(12 + w, 6 + y), row(&pb, y), "row {y} of cell (0, 1)");
            assert_eq!(at(6, 12 + h + y), row(&pb, y), "row {y} of cell (1, 0)");
            assert!(at(12 + w, 12 + h + y).iter().all(|&v| v == 255), "the empty cell is white");
        }
        assert!(tile_pngs(&[vec![b"not a png".as_slice()]]).unwrap_err().contains("row 0, column 0"));
    }

    /// The decoded image's pixels.
    fn decode(png: &Png) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png.bytes.clone()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    /// Pixels of colour `c` in rows `rows`.
    fn count(rgb: &[u8], rows: std::ops::Range<usize>, c: [u8; 3]) -> usize {
        rows.map(|y| (0..WIDTH).filter(|&x| rgb[(y * WIDTH + x) * 3..][..3] == c).count()).sum()
    }

    #[test]
    fn labelled_plot_has_title_bars_marker_and_axis_text() {
        let labels = PmfLabels { title: "bc linear dim 0".into(), axis: BinAxis::Range { low: -2.5, high: 2.5 } };
        let png = pmf_png_labelled(&[0.1, 0.5, 0.4, 0.0], Some(1), &labels);
        assert_eq!(&png.bytes[..8], b"\x89PNG\r\n\x1a\n");
        let (w, h, rgb) = decode(&png);
        assert_eq!((w, h), (WIDTH as u32, HEIGHT as u32));
        assert!(count(&rgb, 0..TOP, INK) > 40, "no title");
        assert!(count(&rgb, TOP..HEIGHT - BOTTOM, BAR) > 1000, "no bars");
        assert!(count(&rgb, TOP..HEIGHT - BOTTOM, MARK) > 100, "no marker");
        assert!(count(&rgb, HEIGHT - BOTTOM + 2..HEIGHT, INK) > 60, "no axis labels");
        assert!(count(&rgb, TOP..HEIGHT - BOTTOM, SCALE) > 20, "no probability scale");
        // Without a title or labels, those rows stay blank.
        let (_, _, bare) = decode(&pmf_png(&[0.1, 0.5, 0.4, 0.0], Some(1)));
        assert_eq!(count(&bare, 0..TOP - 2, INK), 0);
        assert_eq!(count(&bare, HEIGHT - BOTTOM + 6..HEIGHT, INK), 0);
    }

    #[test]
    fn axis_values_follow_the_range() {
        assert_eq!(format_value(-1.25, 5.0), "-1.25");
        assert_eq!(format_value(-2.5, 20.0), "-2.5");
        assert_eq!(format_value(0.0, 0.5), "0.00");
        assert_eq!(format_value(-100.0, 200.0), "-100");
        assert_eq!(format_probability(0.25), "0.25");
        assert_eq!(format_probability(0.031), "0.031");
        let labels =
            PmfLabels { title: String::new(), axis: BinAxis::Labels(vec!["0".into(), "1".into(), "2".into()]) };
        let (_, _, rgb) = decode(&pmf_png_labelled(&[0.2, 0.3, 0.5], None, &labels));
        assert!(count(&rgb, HEIGHT - BOTTOM + 2..HEIGHT, INK) > 20);
    }
}
