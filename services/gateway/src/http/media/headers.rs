//! The HTTP headers of file transfers, as plain functions: `Range`,
//! `If-None-Match` and `Content-Disposition` (read on upload, written on
//! download).

/// One byte range of a `Range: bytes=…` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-`: from `a` to the end.
    From(u64),
    /// `bytes=a-b`: `a` to `b`, both included.
    FromTo(u64, u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Where the range starts and how many bytes it asks for (0: to the
    /// end), unless it counts from the end.
    pub fn offset_length(self) -> Option<(u64, u64)> {
        match self {
            ByteRange::From(start) => Some((start, 0)),
            ByteRange::FromTo(start, end) => Some((start, (end - start).saturating_add(1))),
            ByteRange::Suffix(_) => None,
        }
    }
}

fn number(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    // `u64::from_str` would also take a leading `+`.
    if raw.is_empty() || !raw.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

/// A single range of a `Range` header; `None` for anything else (several
/// ranges, another unit, syntax errors), which is then ignored and the
/// whole file served.
pub fn parse_range(header: &str) -> Option<ByteRange> {
    let (unit, spec) = header.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, false) => number(last).map(ByteRange::Suffix),
        (false, true) => number(first).map(ByteRange::From),
        (false, false) => {
            let (start, end) = (number(first)?, number(last)?);
            (start <= end).then_some(ByteRange::FromTo(start, end))
        }
        (true, true) => None,
    }
}

/// Whether an `If-None-Match` header matches `etag` (unquoted): `*`, or the
/// quoted tag in its list, weak or strong (RFC 9110 compares weakly here).
pub fn none_match(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|tag| {
        tag == "*"
            || tag
                .trim_start_matches("W/")
                .strip_prefix('"')
                .and_then(|tag| tag.strip_suffix('"'))
                == Some(etag)
    })
}

/// Whether a file of this type is shown by the browser rather than saved.
/// SVG is left out: it can carry scripts.
pub fn shown_inline(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("image/") && essence != "image/svg+xml"
}

/// Characters RFC 8187 leaves unencoded in `filename*`.
fn attr_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte)
}

/// `inline` or `attachment`, with the file's name both as ASCII (for old
/// clients) and exactly, in UTF-8 (RFC 6266).
pub fn content_disposition(content_type: &str, filename: &str) -> String {
    let kind = if shown_inline(content_type) {
        "inline"
    } else {
        "attachment"
    };
    if filename.is_empty() {
        return kind.to_owned();
    }
    let fallback: String = filename
        .chars()
        .map(|c| match c {
            '"' | '\\' | '%' => '_',
            c if c == ' ' || c.is_ascii_graphic() => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(filename.len() * 3);
    for byte in filename.bytes() {
        if attr_char(byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

fn percent_decode(raw: &str) -> Option<Vec<u8>> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            if !hex.bytes().all(|digit| digit.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// A quoted string without its opening quote: its value and what follows
/// the closing quote.
fn quoted(raw: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = raw.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?.1),
            '"' => return Some((value, &raw[at + 1..])),
            c => value.push(c),
        }
    }
    None
}

/// The name in a `Content-Disposition` header (`filename*` in UTF-8 is
/// preferred to `filename`); `None` if it names none.
pub fn disposition_filename(header: &str) -> Option<String> {
    let (_, mut rest) = header.split_once(';')?;
    let mut plain = None;
    let mut extended = None;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        let Some((name, value)) = rest.split_once('=') else {
            break;
        };
        let value = value.trim_start();
        let (value, after) = match value.strip_prefix('"') {
            Some(raw) => quoted(raw)?,
            None => {
                let end = value.find(';').unwrap_or(value.len());
                (value[..end].trim_end().to_owned(), &value[end..])
            }
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "filename" => plain = Some(value),
            "filename*" => {
                // charset'language'percent-encoded
                let mut parts = value.splitn(3, '\'');
                let (charset, _, encoded) = (parts.next(), parts.next(), parts.next());
                if charset.is_some_and(|charset| charset.eq_ignore_ascii_case("utf-8")) {
                    extended = encoded
                        .and_then(percent_decode)
                        .and_then(|bytes| String::from_utf8(bytes).ok());
                }
            }
            _ => {}
        }
        rest = after;
    }
    extended.or(plain).filter(|name| !name.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99"), Some(ByteRange::FromTo(0, 99)));
        assert_eq!(parse_range("bytes=100-"), Some(ByteRange::From(100)));
        assert_eq!(parse_range("bytes=-500"), Some(ByteRange::Suffix(500)));
        assert_eq!(parse_range("Bytes = 5 - 7"), Some(ByteRange::FromTo(5, 7)));
        for ignored in [
            "bytes=0-1,5-6",
            "bytes=9-1",
            "bytes=-",
            "bytes=+1-2",
            "items=0-1",
            "bytes=a-b",
            "bytes=99999999999999999999-",
            "",
        ] {
            assert_eq!(parse_range(ignored), None, "{ignored}");
        }
        assert_eq!(ByteRange::FromTo(10, 19).offset_length(), Some((10, 10)));
        assert_eq!(
            ByteRange::FromTo(0, u64::MAX).offset_length(),
            Some((0, u64::MAX))
        );
    }

    #[test]
    fn if_none_match() {
        assert!(none_match("\"abc\"", "abc"));
        assert!(none_match("\"x\", W/\"abc\"", "abc"));
        assert!(none_match("*", "abc"));
        assert!(!none_match("abc", "abc"));
        assert!(!none_match("\"abc-64\"", "abc"));
    }

    #[test]
    fn dispositions() {
        assert_eq!(
            content_disposition("image/png", "a b.png"),
            "inline; filename=\"a b.png\"; filename*=UTF-8''a%20b.png"
        );
        assert_eq!(
            content_disposition("application/pdf", "Grüße \"1\".pdf"),
            "attachment; filename=\"Gr__e _1_.pdf\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%221%22.pdf"
        );
        assert!(content_disposition("image/svg+xml", "x.svg").starts_with("attachment;"));
        assert_eq!(
            disposition_filename("attachment; filename=\"a;b \\\"c\\\".txt\""),
            Some("a;b \"c\".txt".to_owned())
        );
        assert_eq!(
            disposition_filename("attachment; filename=plain.txt; size=3"),
            Some("plain.txt".to_owned())
        );
        assert_eq!(
            disposition_filename(
                "attachment; filename=\"fallback.txt\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe.txt"
            ),
            Some("Grüße.txt".to_owned())
        );
        assert_eq!(disposition_filename("attachment"), None);
        assert_eq!(disposition_filename("attachment; filename=\"\""), None);
        assert_eq!(disposition_filename("attachment; filename=\"open"), None);
    }
}
