//! What a file is, decided from its first bytes (never from the client's
//! claim), and which types are allowed at all.

use crate::error::{Error, Result};

/// Bytes looked at before deciding a file's type (and, for images, its
/// dimensions).
pub const SNIFF_BYTES: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Decoded, stripped of metadata and thumbnailed.
    Image,
    /// Stored and served as is (always as an attachment).
    File,
}

/// The allow-list: detected MIME type → kind.
pub fn allowed(mime: &str) -> Option<Kind> {
    match mime {
        "image/jpeg" | "image/png" | "image/webp" | "image/gif" => Some(Kind::Image),
        "application/pdf" | "application/zip" | "video/mp4" | "video/webm" | "video/quicktime"
        | "audio/mpeg" | "audio/ogg" | "audio/x-wav" | "audio/mp4" | "audio/x-flac" => {
            Some(Kind::File)
        }
        _ => None,
    }
}

/// Detects the type of `head` (the file's first bytes) and checks it
/// against the allow-list and against what the client declared.
pub fn classify(head: &[u8], declared: &str) -> Result<(&'static str, Kind)> {
    let Some(found) = infer::get(head) else {
        return Err(Error::UnsupportedType(
            "the file's type cannot be recognised from its content".into(),
        ));
    };
    let mime = found.mime_type();
    let Some(kind) = allowed(mime) else {
        return Err(Error::UnsupportedType(format!(
            "{mime} files are not allowed"
        )));
    };
    let declared = declared
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let generic = ["", "application/octet-stream", "binary/octet-stream"];
    if !generic.contains(&declared.as_str()) && !same_type(&declared, mime) {
        return Err(Error::UnsupportedType(format!(
            "the content is {mime}, not {declared} as declared"
        )));
    }
    Ok((mime, kind))
}

fn same_type(declared: &str, detected: &str) -> bool {
    declared == detected
        || matches!(
            (declared, detected),
            ("image/jpg", "image/jpeg")
                | ("image/pjpeg", "image/jpeg")
                | ("audio/mp3", "audio/mpeg")
                | ("audio/wav", "audio/x-wav")
                | ("audio/flac", "audio/x-flac")
                | ("application/x-zip-compressed", "application/zip")
        )
}

/// A filename safe to store and to put in a Content-Disposition header:
/// the last path component, no control or path characters, at most 255
/// characters. Names with nothing left become "file".
pub fn sanitize_filename(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*'))
        .collect();
    // No leading dots (a hidden file), however they alternate with spaces
    // (". .x"), and no surrounding whitespace, also where the length limit
    // cuts: sanitising a sanitised name changes nothing.
    let trimmed = cleaned
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end();
    let name: String = trimmed.chars().take(255).collect();
    let name = name.trim_end();
    if name.is_empty() {
        "file".to_owned()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0];
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const EXE: &[u8] = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0";

    #[test]
    fn types_come_from_the_content() {
        assert_eq!(classify(JPEG, "").ok(), Some(("image/jpeg", Kind::Image)));
        assert_eq!(
            classify(JPEG, "image/jpg").ok(),
            Some(("image/jpeg", Kind::Image))
        );
        assert_eq!(
            classify(PNG, "application/octet-stream").ok(),
            Some(("image/png", Kind::Image))
        );
        assert!(matches!(
            classify(PNG, "image/jpeg"),
            Err(Error::UnsupportedType(_))
        ));
        assert!(matches!(
            classify(EXE, "image/png"),
            Err(Error::UnsupportedType(_))
        ));
        assert!(matches!(classify(EXE, ""), Err(Error::UnsupportedType(_))));
        assert!(matches!(
            classify(b"<html><script>", "text/html"),
            Err(Error::UnsupportedType(_))
        ));
    }

    #[test]
    fn filenames_lose_paths_and_dangerous_characters() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("C:\\Users\\me\\photo.jpg"), "photo.jpg");
        assert_eq!(sanitize_filename("a\"b<c>\n.png"), "abc.png");
        assert_eq!(sanitize_filename(".."), "file");
        assert_eq!(sanitize_filename(".hidden"), "hidden");
        assert_eq!(sanitize_filename(". .hidden"), "hidden");
        assert_eq!(
            sanitize_filename(&format!("{} x", "a".repeat(254))),
            "a".repeat(254),
            "no trailing space where the limit cuts"
        );
        assert_eq!(sanitize_filename("фото отпуск.jpg"), "фото отпуск.jpg");
        assert_eq!(sanitize_filename(&"x".repeat(300)).chars().count(), 255);
    }
}

#[cfg(test)]
mod proptests;
