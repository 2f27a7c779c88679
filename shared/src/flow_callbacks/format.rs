//! The answers of a trigger URL, in the trigger's `format` (SPEC §3): `json` (the callback
//! object), `xml` (`<callback>` with one element per field) or `txt` (one `field: value` line
//! per field). Errors come in the same format.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::callbacks::model::{Callback, FIELDS};
use crate::error::ApiError;
use crate::http::ApiResponse;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Xml,
    Txt,
}

pub const FORMATS: &[&str] = &["json", "xml", "txt"];

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Xml => "application/xml; charset=utf-8",
            Self::Txt => "text/plain; charset=utf-8",
        }
    }
}

/// XML 1.0 cannot carry most control characters, even escaped: they become U+FFFD.
fn xml_text(text: &str) -> String {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    let clean: String = text
        .chars()
        .map(|c| if allowed(c) { c } else { '\u{FFFD}' })
        .collect();
    // A literal CR would be read back as LF: keep it as a character reference.
    quick_xml::escape::escape(clean.as_str()).replace('\r', "&#13;")
}

/// A JSON value as element text or line value: strings as they are, objects/arrays as compact
/// JSON, `null` as nothing.
fn plain(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn txt_value(value: &Value) -> String {
    match value {
        // One value per line: a string that would break its line is written as a JSON string.
        Value::String(text) if text.contains(['\n', '\r']) => value.to_string(),
        other => plain(other),
    }
}

fn fields_of(callback: &Callback) -> Vec<(&'static str, Value)> {
    let value = serde_json::to_value(callback).expect("callbacks serialize");
    FIELDS
        .iter()
        .map(|name| (*name, value.get(*name).cloned().unwrap_or(Value::Null)))
        .collect()
}

fn response(status: http::StatusCode, format: Format, body: String) -> ApiResponse {
    let mut response = ApiResponse::json(status, &Value::Null);
    response.body = Bytes::from(body);
    response.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

pub fn render_callback(
    format: Format,
    status: http::StatusCode,
    callback: &Callback,
) -> ApiResponse {
    match format {
        Format::Json => ApiResponse::resource(status, callback),
        Format::Xml => {
            let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<callback>");
            for (name, value) in fields_of(callback) {
                match value {
                    Value::Null => xml.push_str(&format!("<{name}/>")),
                    value => {
                        xml.push_str(&format!("<{name}>{}</{name}>", xml_text(&plain(&value))))
                    }
                }
            }
            xml.push_str("</callback>\n");
            response(status, format, xml)
        }
        Format::Txt => {
            let lines: String = fields_of(callback)
                .iter()
                .map(|(name, value)| format!("{name}: {}\n", txt_value(value)))
                .collect();
            response(status, format, lines)
        }
    }
}

pub fn render_error(format: Format, err: &ApiError) -> ApiResponse {
    let response = render_error_body(format, err);
    match err.retry_after {
        Some(seconds) if format != Format::Json => {
            response.with_header(http::header::RETRY_AFTER, &seconds.to_string())
        }
        _ => response,
    }
}

fn render_error_body(format: Format, err: &ApiError) -> ApiResponse {
    match format {
        Format::Json => ApiResponse::error(err),
        Format::Xml => {
            let mut xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error><message>{}</message><code>{}</code>",
                xml_text(&err.message),
                err.code.as_str()
            );
            if !err.details.is_empty() {
                xml.push_str("<details>");
                for detail in &err.details {
                    xml.push_str(&format!(
                        "<detail><field>{}</field><message>{}</message></detail>",
                        xml_text(&detail.field),
                        xml_text(&detail.message)
                    ));
                }
                xml.push_str("</details>");
            }
            xml.push_str("</error>\n");
            response(err.status(), format, xml)
        }
        Format::Txt => {
            let mut text = format!(
                "error: {}\ncode: {}\n",
                txt_value(&err.message.clone().into()),
                err.code.as_str()
            );
            if !err.details.is_empty() {
                let details = serde_json::to_string(&err.details).expect("details serialize");
                text.push_str(&format!("details: {details}\n"));
            }
            response(err.status(), format, text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped_and_well_formed() {
        assert_eq!(xml_text("a <b> & \"c\""), "a &lt;b&gt; &amp; &quot;c&quot;");
        assert_eq!(xml_text("bell\u{7}"), "bell\u{FFFD}");
        assert_eq!(xml_text("line\r\n"), "line&#13;\n");
    }

    #[test]
    fn txt_values_stay_on_one_line() {
        assert_eq!(
            txt_value(&Value::String("two\nlines".into())),
            "\"two\\nlines\""
        );
        assert_eq!(txt_value(&Value::Null), "");
        assert_eq!(
            txt_value(&serde_json::json!({"a": [1, 2]})),
            r#"{"a":[1,2]}"#
        );
        assert_eq!(txt_value(&serde_json::json!(3)), "3");
    }
}
