//! `--output json`: Go's `json.Marshal` of pack's inspect document, re-indented with two
//! spaces (`json.Indent`), HTML characters escaped, nil slices `null`.

use super::structured::{self, Flavor};
use super::{InspectReport, RenderError, RenderOptions};

/// Renders the JSON document, with the trailing newline pack's logger adds.
pub fn render(report: &InspectReport, options: &RenderOptions) -> Result<String, RenderError> {
    let doc = structured::document(report, options, Flavor::Json)?;
    let mut out = crate::gojson::to_string_indent(&doc).map_err(RenderError::Marshal)?;
    out.push('\n');
    Ok(out)
}
