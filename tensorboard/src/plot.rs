//! PNG bar plots of predicted PMFs, for TensorBoard's image tab.

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

const WIDTH: usize = 320;
const HEIGHT: usize = 160;
const MARGIN: usize = 8;

/// A bar plot of `pmf` (one bar per bin, scaled to the largest bar) with an optional marked bin (e.g. the
/// dataset's action) drawn as a red line.
pub fn pmf_png(pmf: &[f32], marked: Option<usize>) -> Png {
    let mut rgb = vec![255u8; WIDTH * HEIGHT * 3];
    let plot_w = WIDTH - 2 * MARGIN;
    let plot_h = HEIGHT - 2 * MARGIN;
    let base = HEIGHT - MARGIN;
    let top = pmf.iter().cloned().filter(|p| p.is_finite()).fold(0.0f32, f32::max);
    let m = pmf.len().max(1);
    let mut put = |x: usize, y: usize, c: [u8; 3]| {
        if x < WIDTH && y < HEIGHT {
            let i = (y * WIDTH + x) * 3;
            rgb[i..i + 3].copy_from_slice(&c);
        }
    };
    for (i, &p) in pmf.iter().enumerate() {
        let x0 = MARGIN + i * plot_w / m;
        let x1 = (MARGIN + (i + 1) * plot_w / m).max(x0 + 1);
        let h = if top > 0.0 && p.is_finite() { ((p / top) * plot_h as f32).round() as usize } else { 0 };
        for x in x0..x1.saturating_sub(usize::from(x1 - x0 > 2)) {
            for y in base - h.min(plot_h)..base {
                put(x, y, [31, 119, 180]);
            }
        }
    }
    if let Some(b) = marked.filter(|&b| b < m) {
        let x = MARGIN + b * plot_w / m + plot_w / m / 2;
        for y in MARGIN..base {
            put(x, y, [214, 39, 40]);
        }
    }
    for x in MARGIN..WIDTH - MARGIN {
        put(x, base, [0, 0, 0]);
    }
    Png { width: WIDTH as u32, height: HEIGHT as u32, bytes: encode_rgb(&rgb, WIDTH as u32, HEIGHT as u32) }
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
    fn png_has_signature_and_size() {
        let png = pmf_png(&[0.1, 0.5, 0.4], Some(1));
        assert_eq!(&png.bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!((png.width, png.height), (320, 160));
    }
}
