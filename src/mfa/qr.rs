//! The QR code of an `otpauth://` URL as an inline SVG drawn on the server: no script, no
//! external service, and the secret never leaves the page.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// An `<svg>` element for `text`; `None` if it does not fit in a QR code (an absurdly long
/// username; the page then shows the secret as text only).
pub fn svg(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // Inline in HTML: the XML declaration does not belong there.
    let start = image.find("<svg")?;
    Some(image[start..].to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_otpauth_url_becomes_an_inline_svg() {
        let svg =
            super::svg("otpauth://totp/latch:ann?secret=GEZDGNBVGY3TQOJQ&issuer=latch").unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(!svg.contains("<script"));
    }
}
