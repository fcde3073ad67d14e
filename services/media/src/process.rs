//! Image processing, off the request path: decode with hard limits, apply
//! the EXIF orientation, re-encode a clean copy without any metadata (EXIF,
//! GPS, XMP, comments — and whatever else a polyglot hid after the image),
//! and make thumbnails.

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

pub const THUMBNAIL_SIZES: [u32; 2] = [64, 320];
/// Most memory one decode may allocate.
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

pub struct Thumbnail {
    pub size: u32,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

pub struct Processed {
    pub width: u32,
    pub height: u32,
    /// The image to serve instead of the upload; `None` serves the upload
    /// itself (GIF, which carries no EXIF and whose animation a re-encode
    /// would lose).
    pub clean: Option<Vec<u8>>,
    pub thumbnails: Vec<Thumbnail>,
}

/// Reads an image's dimensions from its first bytes.
pub fn dimensions(head: &[u8]) -> Result<(u32, u32), String> {
    ImageReader::new(Cursor::new(head))
        .with_guessed_format()
        .map_err(|err| err.to_string())?
        .into_dimensions()
        .map_err(|err| format!("not a valid image: {err}"))
}

/// Too many pixels to decode safely (a decompression bomb).
pub fn too_many_pixels(width: u32, height: u32, max_pixels: u64) -> bool {
    u64::from(width) * u64::from(height) > max_pixels
}

pub fn process(bytes: &[u8], mime: &str, max_pixels: u64) -> Result<Processed, String> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|err| err.to_string())?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|err| err.to_string())?;
    let (width, height) = decoder.dimensions();
    if too_many_pixels(width, height, max_pixels) {
        return Err(format!("{width}x{height} pixels is more than allowed"));
    }
    let orientation = decoder.orientation().map_err(|err| err.to_string())?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|err| err.to_string())?;
    image.apply_orientation(orientation);
    let clean = match mime {
        "image/jpeg" => Some(encode_jpeg(&image, 90)?),
        "image/png" => Some(encode(&image, ImageFormat::Png)?),
        "image/webp" => Some(encode(
            &DynamicImage::ImageRgba8(image.to_rgba8()),
            ImageFormat::WebP,
        )?),
        _ => None,
    };
    let thumbnails = THUMBNAIL_SIZES
        .iter()
        .map(|&size| {
            let small = image.thumbnail(size, size);
            Ok(Thumbnail {
                size,
                width: small.width(),
                height: small.height(),
                bytes: encode_jpeg(&small, 80)?,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Processed {
        width: image.width(),
        height: image.height(),
        clean,
        thumbnails,
    })
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>, String> {
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, format)
        .map_err(|err| err.to_string())?;
    Ok(out.into_inner())
}

fn encode_jpeg(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let rgb = DynamicImage::ImageRgb8(image.to_rgb8());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&rgb)
        .map_err(|err| err.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG with an EXIF segment carrying a GPS marker.
    pub fn jpeg_with_exif(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::new_rgb8(width, height);
        let plain = encode_jpeg(&image, 90).expect("jpeg");
        let payload = b"Exif\0\0MM\0*GPSLatitude=48.8584;GPSLongitude=2.2945";
        let mut segment = vec![0xFF, 0xE1];
        segment.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        segment.extend_from_slice(payload);
        let mut out = plain[..2].to_vec();
        out.extend_from_slice(&segment);
        out.extend_from_slice(&plain[2..]);
        out
    }

    #[test]
    fn metadata_is_stripped_and_thumbnails_fit() {
        let original = jpeg_with_exif(800, 600);
        assert!(original.windows(11).any(|w| w == b"GPSLatitude"));
        let processed = process(&original, "image/jpeg", 50_000_000).expect("processed");
        let clean = processed.clean.expect("clean copy");
        assert!(!clean.windows(4).any(|w| w == b"Exif"));
        assert!(!clean.windows(11).any(|w| w == b"GPSLatitude"));
        assert_eq!((processed.width, processed.height), (800, 600));
        let sizes: Vec<(u32, u32, u32)> = processed
            .thumbnails
            .iter()
            .map(|t| (t.size, t.width, t.height))
            .collect();
        assert_eq!(sizes, vec![(64, 64, 48), (320, 320, 240)]);
    }

    #[test]
    fn bombs_and_garbage_are_refused() {
        // A PNG header claiming 100,000 x 100,000 pixels.
        let bomb = messenger_testkit::images::png_header(100_000, 100_000);
        let (w, h) = dimensions(&bomb).expect("header readable");
        assert!(too_many_pixels(w, h, 50_000_000));
        assert!(process(&bomb, "image/png", 50_000_000).is_err());
        assert!(process(b"\xFF\xD8\xFF\xE0 truncated", "image/jpeg", 50_000_000).is_err());
    }
}
