//! Checks of formats shared by several resources.

/// E.164: `+`, a non-zero digit, then 6 to 14 more digits (7 to 15 in all).
pub fn is_e164(text: &str) -> bool {
    text.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// A BCP 47 language tag of the form used for voice and chat languages: a language
/// (2–3 letters: ISO 639; the 5–8 letter form is reserved and has no registered values), then optional script (4 letters), region
/// (2 letters or 3 digits), variants (5–8 alphanumerics or a digit and 3 alphanumerics) and
/// extensions/private use (`x-…`). E.g. `en`, `en-US`, `zh-Hant-TW`, `es-419`, `sl-rozaj`.
pub fn is_language_tag(tag: &str) -> bool {
    if tag.is_empty() || tag.len() > 64 {
        return false;
    }
    let mut parts = tag.split('-').peekable();
    let alpha = |s: &str| s.bytes().all(|b| b.is_ascii_alphabetic());
    let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let Some(language) = parts.next() else {
        return false;
    };
    if !(alpha(language) && (2..=3).contains(&language.len())) {
        return false;
    }
    if let Some(script) = parts.peek()
        && script.len() == 4
        && alpha(script)
    {
        parts.next();
    }
    if let Some(region) = parts.peek()
        && ((region.len() == 2 && alpha(region)) || (region.len() == 3 && digits(region)))
    {
        parts.next();
    }
    while let Some(part) = parts.next() {
        let is_variant = alnum(part)
            && ((5..=8).contains(&part.len())
                || (part.len() == 4 && part.as_bytes()[0].is_ascii_digit()));
        if is_variant {
            continue;
        }
        // An extension or private use: a singleton, then one or more subtags of 1–8 alphanumerics.
        if part.len() == 1 && alnum(part) {
            let mut any = false;
            while let Some(sub) = parts.peek() {
                if sub.len() > 1 && sub.len() <= 8 && alnum(sub) {
                    any = true;
                    parts.next();
                } else {
                    break;
                }
            }
            if !any {
                return false;
            }
            continue;
        }
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers() {
        for good in ["+15551234567", "+442071838750", "+4930123456"] {
            assert!(is_e164(good), "{good}");
        }
        for bad in [
            "15551234567",
            "+0123456789",
            "+1555",
            "+1555123456789012",
            "+1 555 123",
            "",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn language_tags() {
        for good in [
            "en",
            "en-US",
            "zh-Hant-TW",
            "es-419",
            "sl-rozaj",
            "de-CH-1996",
            "en-US-x-twain",
        ] {
            assert!(is_language_tag(good), "{good}");
        }
        for bad in [
            "",
            "e",
            "english-US-",
            "en_US",
            "en-",
            "123",
            "en-US-x",
            "toolonglanguage",
        ] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }
}
