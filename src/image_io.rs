//! Images in and out: decoding with limits, alpha on white, fitting to the
//! sizes the VQ-VAE accepts (spec section 8), PNG out with a `parameters` chunk.

use std::io::Cursor;
use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::error::{Error, Result};
use crate::model::Rgb;

/// Largest side and decoded size we accept: a crafted header cannot make us
/// allocate more than this.
pub const MAX_SIDE: u32 = 16384;
pub const MAX_ALLOC: u64 = 1 << 30;

fn limits() -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(MAX_SIDE);
    l.max_image_height = Some(MAX_SIDE);
    l.max_alloc = Some(MAX_ALLOC);
    l
}

/// Decodes any format the `image` crate knows, from bytes (`name` for messages).
pub fn decode_bytes(bytes: &[u8], name: &Path) -> Result<DynamicImage> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::image(name, format!("cannot read: {e}")))?;
    if reader.format().is_none() {
        return Err(Error::image(name, "not an image this program can read (PNG, JPEG, WebP, BMP, GIF)"));
    }
    // the JPEG decoder fills a truncated file's missing rows with grey and
    // succeeds; a complete JPEG ends with its EOI marker (FF D9), so look for it
    if reader.format() == Some(image::ImageFormat::Jpeg) && !jpeg_complete(bytes) {
        return Err(Error::image(name, "truncated JPEG (no end-of-image marker): the file is incomplete, copy or download it again"));
    }
    reader.limits(limits());
    decode_oriented(reader).map_err(|e| {
        let why = match &e {
            image::ImageError::Limits(_) => {
                format!("too large to open (limit {MAX_SIDE} px a side, {} MiB decoded)", MAX_ALLOC >> 20)
            }
            _ => format!("corrupt or unsupported image: {e}"),
        };
        Error::image(name, why)
    })
}

/// Decodes within the limits and applies the file's EXIF orientation (a
/// phone's portrait JPEG is stored sideways with Orientation = 6), so an
/// image opens as viewers display it; photos and masks alike.
fn decode_oriented(reader: ImageReader<Cursor<&[u8]>>) -> image::ImageResult<DynamicImage> {
    let mut decoder = reader.into_decoder()?;
    // what `ImageReader::decode` checks: the decoded buffer within the limits
    limits().reserve(decoder.total_bytes())?;
    // unreadable EXIF is no reason to refuse the pixels: shown unrotated
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder)?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Whether a JPEG's last bytes (trailing zeros or padding aside) hold its EOI marker.
fn jpeg_complete(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// A mask value (alpha or brightness, 0 to 255) above this counts as painted.
pub const MASK_THRESHOLD: u8 = 127;

/// How a mask image is read: transparency when it has any (opaque =
/// regenerate), else brightness (white = regenerate). Stated in the messages.
pub const MASK_RULE: &str = "masks are read by their alpha when they have transparency (opaque = regenerate), else by brightness (white = regenerate); a value above 127 of 255 counts as painted";

/// The message for a mask ([`mask_of`]'s result) that selects nothing: the
/// rule, the threshold and this mask's highest value, so a mid-grey mask
/// (127) says why it counts as unpainted.
pub fn empty_mask_message(mask: &image::GrayImage) -> String {
    let max = mask.as_raw().iter().copied().max().unwrap_or(0);
    let what = if max == 0 {
        "it is all 0 (black, or fully transparent)".to_string()
    } else {
        format!("its highest value is {max} of 255, not above {MASK_THRESHOLD}")
    };
    format!("the mask is empty: {what}; paint over the part that should change ({MASK_RULE})")
}

/// The mask of a mask image, by [`MASK_RULE`].
pub fn mask_of(img: &DynamicImage) -> image::GrayImage {
    if img.color().has_alpha() {
        let rgba = img.to_rgba8();
        if rgba.pixels().any(|p| p[3] < 255) {
            return image::GrayImage::from_fn(rgba.width(), rgba.height(), |x, y| image::Luma([rgba.get_pixel(x, y)[3]]));
        }
    }
    img.to_luma8()
}

pub fn open(path: &Path) -> Result<DynamicImage> {
    let bytes = crate::input::read_capped(path, crate::input::IMAGE_FILE, "image")?;
    decode_bytes(&bytes, path)
}

/// RGB with transparency composited on white; 16-bit and grey are converted.
pub fn to_rgb_on_white(img: &DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = p[3] as f32 / 255.0;
        for c in 0..3 {
            o[c] = (p[c] as f32 * a + 255.0 * (1.0 - a)).round() as u8;
        }
    }
    out
}

/// Opens an image file as RGB on white.
pub fn open_rgb(path: &Path) -> Result<RgbImage> {
    Ok(to_rgb_on_white(&open(path)?))
}

/// How an input image is brought to a size the VQ-VAE accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    /// Sides that are multiples of the VQ factor stay as they are; others are
    /// centre-cropped to the nearest multiple below.
    #[default]
    Native,
    /// Resize and centre-crop to the bucket of closest aspect ratio with about
    /// `area` pixels (sides multiples of `multiple`, aspect at most 4).
    Bucket { area: usize, multiple: usize },
}

/// The bucket sizes of about `area` pixels: sides multiples of `multiple`,
/// aspect ratio at most 4, one per height.
pub fn buckets(area: usize, multiple: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut h = multiple;
    while h * h <= area * 4 {
        let w = ((area as f64 / h as f64) / multiple as f64).round() as usize * multiple;
        if w >= multiple && w * 4 >= h && h * 4 >= w {
            out.push((w, h));
        }
        h += multiple;
    }
    out
}

/// The bucket whose aspect ratio is closest (in log space) to `w / h`.
pub fn nearest_bucket(w: usize, h: usize, area: usize, multiple: usize) -> (usize, usize) {
    let target = (w as f64 / h as f64).ln();
    buckets(area, multiple)
        .into_iter()
        .min_by(|a, b| {
            let da = ((a.0 as f64 / a.1 as f64).ln() - target).abs();
            let db = ((b.0 as f64 / b.1 as f64).ln() - target).abs();
            da.total_cmp(&db)
        })
        .unwrap_or((multiple, multiple))
}

/// Scales to cover `(tw, th)` and crops the centre: deterministic, unlike the
/// reference's random crop.
pub fn cover_crop(img: &RgbImage, tw: usize, th: usize) -> RgbImage {
    let (w, h) = (img.width() as f64, img.height() as f64);
    let s = (tw as f64 / w).max(th as f64 / h);
    let (sw, sh) = (((w * s).round() as u32).max(tw as u32), ((h * s).round() as u32).max(th as u32));
    let scaled = if (sw, sh) == (img.width(), img.height()) {
        img.clone()
    } else {
        image::imageops::resize(img, sw, sh, FilterType::CatmullRom)
    };
    let (x, y) = ((sw - tw as u32) / 2, (sh - th as u32) / 2);
    image::imageops::crop_imm(&scaled, x, y, tw as u32, th as u32).to_image()
}

/// The size [`fit`] gives a `w x h` image, without touching pixels.
pub fn fit_size(w: usize, h: usize, fit: Fit, factor: usize) -> Result<(usize, usize)> {
    match fit {
        Fit::Native => {
            let (tw, th) = (w / factor * factor, h / factor * factor);
            if tw == 0 || th == 0 {
                return Err(Error::invalid(format!("image {w}x{h} is smaller than one {factor}x{factor} token cell")));
            }
            Ok((tw, th))
        }
        Fit::Bucket { area, multiple } => Ok(nearest_bucket(w, h, area, multiple.max(factor))),
    }
}

/// Brings an image to a VQ-compatible size.
pub fn fit(img: &RgbImage, fit: Fit, factor: usize) -> Result<RgbImage> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (tw, th) = fit_size(w, h, fit, factor)?;
    match fit {
        _ if (tw, th) == (w, h) => Ok(img.clone()),
        Fit::Native => Ok(image::imageops::crop_imm(img, ((w - tw) / 2) as u32, ((h - th) / 2) as u32, tw as u32, th as u32).to_image()),
        Fit::Bucket { .. } => Ok(cover_crop(img, tw, th)),
    }
}

pub fn to_rgb(img: &RgbImage) -> Rgb {
    Rgb { width: img.width() as usize, height: img.height() as usize, data: img.as_raw().clone() }
}

pub fn from_rgb(rgb: &Rgb) -> RgbImage {
    // from_raw only fails on a length mismatch, which Rgb's producers rule out
    RgbImage::from_raw(rgb.width as u32, rgb.height as u32, rgb.data.clone())
        .unwrap_or_else(|| RgbImage::new(rgb.width as u32, rgb.height as u32))
}

/// Encodes PNG bytes with an optional `parameters` tEXt chunk (the key other
/// image tools read generation settings from).
pub fn png_bytes(img: &RgbImage, parameters: Option<&str>) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut buf, img.width(), img.height());
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        if let Some(p) = parameters {
            // tEXt is Latin-1 only: any other prompt (Chinese, emoji, "€")
            // goes in an iTXt chunk, which the same tools read as UTF-8
            let latin1 = p.chars().all(|c| (c as u32) < 256);
            if latin1 {
                enc.add_text_chunk("parameters".into(), p.into()).map_err(|e| Error::invalid(format!("png: {e}")))?;
            } else {
                enc.add_itxt_chunk("parameters".into(), p.into()).map_err(|e| Error::invalid(format!("png: {e}")))?;
            }
        }
        let mut w = enc.write_header().map_err(|e| Error::invalid(format!("png: {e}")))?;
        w.write_image_data(img.as_raw()).map_err(|e| Error::invalid(format!("png: {e}")))?;
    }
    Ok(buf)
}

/// Writes a PNG atomically (temp file + rename), so a failure never leaves a
/// half-written image where a good one was.
pub fn save_png(path: &Path, img: &RgbImage, parameters: Option<&str>) -> Result<()> {
    let bytes = png_bytes(img, parameters)?;
    write_atomic(path, &bytes)
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    if let Err(e) = std::fs::write(&tmp, bytes) {
        // a full disk must not leave a partial temporary file behind
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Reads the `parameters` tEXt chunk of a PNG, if any.
pub fn png_parameters(bytes: &[u8]) -> Option<String> {
    let dec = png::Decoder::new(Cursor::new(bytes));
    let reader = dec.read_info().ok()?;
    let info = reader.info();
    if let Some(t) = info.uncompressed_latin1_text.iter().find(|t| t.keyword == "parameters") {
        return Some(t.text.clone());
    }
    info.utf8_text.iter().find(|t| t.keyword == "parameters").and_then(|t| t.get_text().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_alpha_and_grey_images_become_rgb_on_white() {
        // 16-bit RGBA: one opaque red pixel, one fully transparent, one half-transparent black
        let mut img = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::new(3, 1);
        img.put_pixel(0, 0, image::Rgba([65535, 0, 0, 65535]));
        img.put_pixel(1, 0, image::Rgba([0, 0, 0, 0]));
        img.put_pixel(2, 0, image::Rgba([0, 0, 0, 32768]));
        let mut bytes = Vec::new();
        DynamicImage::ImageRgba16(img).write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        let rgb = to_rgb_on_white(&decode_bytes(&bytes, Path::new("a.png")).unwrap());
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 0, 0]);
        assert_eq!(rgb.get_pixel(1, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(2, 0).0, [127, 127, 127]);

        let grey = image::GrayImage::from_pixel(2, 2, image::Luma([40]));
        let mut bytes = Vec::new();
        DynamicImage::ImageLuma8(grey).write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        let rgb = to_rgb_on_white(&decode_bytes(&bytes, Path::new("g.png")).unwrap());
        assert_eq!(rgb.get_pixel(1, 1).0, [40, 40, 40]);
    }

    #[test]
    fn buckets_keep_aspect_within_four_and_sides_on_the_grid() {
        for (w, h) in [(1000, 1000), (4000, 1000), (300, 900)] {
            let (bw, bh) = nearest_bucket(w, h, 512 * 512, 32);
            assert!(bw % 32 == 0 && bh % 32 == 0);
            assert!(bw * 4 >= bh && bh * 4 >= bw);
            let area = (bw * bh) as f64 / (512.0 * 512.0);
            assert!((0.8..1.25).contains(&area), "{bw}x{bh}");
        }
        assert_eq!(nearest_bucket(1000, 1000, 512 * 512, 32), (512, 512));
    }
}
