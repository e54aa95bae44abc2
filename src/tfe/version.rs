//! Which TFE this is, and what it has: the version table the client
//! chooses its requests by. Each row cites its source; a version the table
//! does not know (none reported, an unusual string) keeps the client's
//! 404/405 fallbacks (POST, then PUT/PATCH; customization-settings, then
//! general-settings).
//!
//! | what | from | source |
//! | --- | --- | --- |
//! | version header | numbered releases: `X-TFE-Current-Version` (`1.1.0`); monthly releases: `X-TFE-Version` (`v202406-1`) | provider `internal/provider/provider.go` `RemoteTFEVersion()` reads the first, then the second; go-tfe `tfe.go` reads both from the ping |
//! | `/api/v1/health/readiness` | 1.2.0 | TFE docs `releases/1.2.x/index.mdx` (`/_health_check` deprecated, readiness added) |
//! | `/_health_check` gone (410) | 2.0.0 | TFE docs `releases/2.0.x/index.mdx`, Breaking Changes |
//! | customization-settings | v202003-1, and every numbered release | TFE v202309-1 docs `api-docs/admin/settings.mdx` ("Customization Settings", available since v202003-1) |
//! | POST to revoke the old SAML certificate and to verify Twilio | every documented release (v202309-1 and 2.0.x docs) | TFE v202309-1 and 2.0.x docs `api-docs/admin/settings.mdx`; go-tfe `RevokeIdpCert` |
//! | token TTL policies, `max-ttl-enabled` | 2.0.1 | provider `resource_tfe_org_max_token_ttl_policy.go` (requires 2.0.1); 2.0.0 release notes announce the feature, so 2.0.0 is refused too, as the provider does |
//! | API tokens always expire (2 years by default) | 2.0.0 | TFE docs `releases/2.0.x/index.mdx`: "Existing tokens without expiration dates still function" after an upgrade |

use std::cmp::Ordering;
use std::fmt;

/// A TFE release, as its version header names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TfeVersion {
    /// `MAJOR.MINOR.PATCH` (from 1.0.0, 2024).
    Numbered(u32, u32, u32),
    /// `vYYYYMM-N`, the monthly releases before them.
    Monthly(u32, u32),
}

impl TfeVersion {
    /// Parses `1.1.0`, `v1.1.0`, `2.0.1-beta`, `v202309-1`; `None` for what
    /// the table does not know.
    pub fn parse(s: &str) -> Option<TfeVersion> {
        let s = s.trim();
        let bare = s.strip_prefix('v').unwrap_or(s);
        if let Some((month, n)) = bare.split_once('-')
            && month.len() == 6
            && month.bytes().all(|b| b.is_ascii_digit())
        {
            return Some(TfeVersion::Monthly(month.parse().ok()?, n.parse().ok()?));
        }
        let core = bare.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>());
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Ok(a)), Some(Ok(b)), Some(Ok(c)), None) => Some(TfeVersion::Numbered(a, b, c)),
            _ => None,
        }
    }

    /// Whether this release is `other` or later (every numbered release is
    /// later than every monthly one).
    pub fn at_least(self, other: TfeVersion) -> bool {
        self.cmp_to(other) != Ordering::Less
    }

    fn cmp_to(self, other: TfeVersion) -> Ordering {
        use TfeVersion::*;
        match (self, other) {
            (Numbered(a, b, c), Numbered(x, y, z)) => (a, b, c).cmp(&(x, y, z)),
            (Monthly(a, b), Monthly(x, y)) => (a, b).cmp(&(x, y)),
            (Numbered(..), Monthly(..)) => Ordering::Greater,
            (Monthly(..), Numbered(..)) => Ordering::Less,
        }
    }

    /// Token TTL policies and `max-ttl-enabled` (see the table).
    pub fn has_token_ttl(self) -> bool {
        self.at_least(TfeVersion::Numbered(2, 0, 1))
    }

    /// customization-settings (see the table).
    pub fn has_customization(self) -> bool {
        self.at_least(TfeVersion::Monthly(202003, 1))
    }

    /// Whether `/api/v1/health/readiness` exists (1.2.0 and later).
    pub fn has_readiness(self) -> bool {
        self.at_least(TfeVersion::Numbered(1, 2, 0))
    }
}

impl fmt::Display for TfeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TfeVersion::Numbered(a, b, c) => write!(f, "{a}.{b}.{c}"),
            TfeVersion::Monthly(m, n) => write!(f, "v{m}-{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_numberings_and_orders_them() {
        let v = |s| TfeVersion::parse(s).unwrap();
        assert_eq!(v("1.1.0"), TfeVersion::Numbered(1, 1, 0));
        assert_eq!(v("v2.0.1"), TfeVersion::Numbered(2, 0, 1));
        assert_eq!(v("2.0.1-beta"), TfeVersion::Numbered(2, 0, 1));
        assert_eq!(v("v202309-1"), TfeVersion::Monthly(202309, 1));
        assert_eq!(TfeVersion::parse("latest"), None);
        assert_eq!(TfeVersion::parse("1.2"), None);
        assert!(v("1.0.0").at_least(v("v202412-1")));
        assert!(!v("v202309-1").has_token_ttl());
        assert!(!v("1.1.0").has_token_ttl());
        assert!(!v("2.0.0").has_token_ttl());
        assert!(v("2.0.1").has_token_ttl());
        assert!(v("2.1.0").has_token_ttl());
        assert!(v("v202309-1").has_customization());
        assert!(!v("v201912-1").has_customization());
        assert!(!v("1.1.0").has_readiness() && v("1.2.0").has_readiness());
        assert_eq!(v("v202309-1").to_string(), "v202309-1");
    }
}
