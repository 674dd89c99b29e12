//! The parts of the JSON documents of docs/json-output.md that `base-image check` and
//! `builder create --dry-run` share, as the tests read them: every field required, no other
//! allowed.

use serde::Deserialize;

/// A finding (docs/json-output.md, "Findings").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub rule: String,
    pub level: String,
    pub role: String,
    pub image: String,
    pub platform: String,
    pub message: String,
    pub fix: String,
}

impl Finding {
    /// Checks the value sets the schema states: a level, a role, a rule of the validator's
    /// table, and a finding that names its image and platform, what is wrong and the fix.
    pub fn check(&self) {
        assert!(["error", "warning", "info"].contains(&self.level.as_str()), "{self:?}");
        assert!(["build", "run", "mirror"].contains(&self.role.as_str()), "{self:?}");
        assert!(cnbx_validate::rule_by_id(&self.rule).is_some(), "{self:?}");
        for text in [&self.image, &self.platform, &self.message, &self.fix] {
            assert!(!text.is_empty(), "{self:?}");
        }
    }
}
