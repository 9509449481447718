//! QR code of a provisioning URL, as served by `/provisioning/qrcode/{token}`.
//!
//! FlexiAPI renders a 300 px code with a 10 px margin (320×320) at error
//! correction level High, so that phones scan it from a screen or a slightly
//! damaged printout. The same geometry is kept so pages and mails that size
//! the image still fit.

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, GrayImage, ImageEncoder, Luma};
use qrcode::{Color, EcLevel, QrCode};

/// Side of the whole image, margin included.
const IMAGE_SIZE: u32 = 320;
/// Side available to the modules; the rest is the quiet zone.
const CODE_AREA: u32 = 300;

const WHITE: Luma<u8> = Luma([255]);
const BLACK: Luma<u8> = Luma([0]);

/// Encodes `data` (UTF-8, typically the provisioning URL) as a 320×320
/// grayscale PNG. Modules are drawn as whole pixel squares, never resampled,
/// so edges stay sharp for scanners; the leftover of 300 px that does not
/// divide evenly is added to the white border, centring the code.
pub fn qr_png(data: &str) -> Result<Vec<u8>, String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::H)
        .map_err(|e| format!("cannot encode QR code: {e}"))?;
    let modules = u32::try_from(code.width()).map_err(|e| e.to_string())?;
    let scale = CODE_AREA / modules.max(1);
    if scale == 0 {
        return Err(format!("QR code of {modules} modules does not fit in {CODE_AREA} px"));
    }
    let offset = (IMAGE_SIZE - modules * scale) / 2;

    let mut image = GrayImage::from_pixel(IMAGE_SIZE, IMAGE_SIZE, WHITE);
    let colors = code.to_colors();
    for (index, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        // `index` < modules², which fits in u32 since modules did.
        let index = index as u32;
        let left = offset + (index % modules) * scale;
        let top = offset + (index / modules) * scale;
        for y in top..top + scale {
            for x in left..left + scale {
                image.put_pixel(x, y, BLACK);
            }
        }
    }

    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(image.as_raw(), IMAGE_SIZE, IMAGE_SIZE, ExtendedColorType::L8)
        .map_err(|e| format!("cannot encode PNG: {e}"))?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> (u32, u32, String) {
        let image = image::load_from_memory_with_format(png, image::ImageFormat::Png).expect("valid PNG").to_luma8();
        let (width, height) = image.dimensions();
        let mut prepared = rqrr::PreparedImage::prepare(image);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1, "exactly one QR code");
        let (_, content) = grids[0].decode().expect("decodable QR code");
        (width, height, content)
    }

    #[test]
    fn encodes_the_provisioning_url() {
        let url = "https://flexiapi.example.org/provisioning/AbCdEfGhIjKlM?reset_password=1";
        let png = qr_png(url).expect("encodes");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(decode(&png), (320, 320, url.to_owned()));
    }

    #[test]
    fn encodes_short_and_long_utf8_payloads() {
        let long = format!("https://flexiapi.example.org/provisioning/{}", "x".repeat(400));
        for data in ["a", "https://h/é☺", long.as_str()] {
            let png = qr_png(data).expect("encodes");
            assert_eq!(decode(&png), (320, 320, data.to_owned()));
        }
    }

    #[test]
    fn keeps_a_white_quiet_zone_of_at_least_ten_pixels() {
        let png = qr_png("https://flexiapi.example.org/provisioning/token").expect("encodes");
        let image = image::load_from_memory(&png).expect("valid PNG").to_luma8();
        for (x, y, pixel) in image.enumerate_pixels() {
            let border = x < 10 || y < 10 || x >= 310 || y >= 310;
            if border {
                assert_eq!(pixel.0[0], 255, "pixel ({x}, {y}) in the margin");
            } else {
                assert!(pixel.0[0] == 0 || pixel.0[0] == 255);
            }
        }
    }

    #[test]
    fn refuses_data_too_long_for_a_qr_code() {
        let err = qr_png(&"9".repeat(8000)).expect_err("too long");
        assert!(err.starts_with("cannot encode QR code"), "{err}");
    }
}
