//! File names inside the export: safe characters only, a media file's extension
//! from its MIME type (else the sender's file name).

/// `s` with only `[A-Za-z0-9._-]`, at most 100 characters; never empty.
pub fn safe(s: &str) -> String {
    let out: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(100)
        .collect();
    match out.trim_start_matches('.') {
        "" => "unnamed".into(),
        t => t.to_string(),
    }
}

/// The extension (with its dot) for a media file.
pub fn extension(mime: Option<&str>, filename: Option<&str>) -> String {
    let by_mime = mime
        .map(|m| {
            m.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .and_then(|m| {
            Some(match m.as_str() {
                "image/jpeg" => "jpg",
                "image/png" => "png",
                "image/webp" => "webp",
                "image/gif" => "gif",
                "audio/ogg" => "ogg",
                "audio/mpeg" => "mp3",
                "audio/aac" => "aac",
                "audio/amr" => "amr",
                "audio/mp4" => "m4a",
                "video/mp4" => "mp4",
                "video/3gpp" => "3gp",
                "application/pdf" => "pdf",
                "text/plain" => "txt",
                _ => return None,
            })
        });
    let by_name = || {
        let ext = filename?.rsplit_once('.')?.1;
        let ext = safe(ext).to_ascii_lowercase();
        (ext.len() <= 8 && ext != "unnamed").then_some(ext)
    };
    match by_mime.map(str::to_string).or_else(by_name) {
        Some(e) => format!(".{e}"),
        None => ".bin".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_extensions() {
        for (mime, file, ext) in [
            (Some("image/png"), None, ".png"),
            (Some("audio/ogg; codecs=opus"), None, ".ogg"),
            (Some("application/x-weird"), Some("report.DOCX"), ".docx"),
            (None, Some("../../etc/passwd"), ".bin"),
            (None, None, ".bin"),
            (None, Some("a.verylongextension"), ".bin"),
        ] {
            assert_eq!(extension(mime, file), ext, "{mime:?} {file:?}");
        }
        assert_eq!(safe("../x/y"), "xy");
        assert_eq!(safe("wamid.HBg=="), "wamid.HBg");
        assert_eq!(safe(""), "unnamed");
    }
}
