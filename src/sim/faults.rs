//! Fault injection: scripted rules (by request number, mutating-request number
//! or path) and a seeded random mode. Every fault except `pause-after` acts
//! *before* the simulated TFE touches its state, so a client may safely retry
//! what a fault refused.

use std::fmt;
use std::time::Duration;

use crate::config::duration::parse_duration;

/// Which request a scripted rule applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// The n-th request the simulator received (1-based, `/_sim` excluded).
    Seq(u64),
    /// The n-th mutating request (POST, PUT, PATCH, DELETE; 1-based).
    Mutating(u64),
    /// Requests to this path, optionally only with this method.
    Path {
        method: Option<String>,
        path: String,
    },
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer with this status and a JSON:API error body, without acting.
    Status(u16),
    /// Answer 429 with `X-RateLimit-Reset: <secs>`.
    RateLimit(f64),
    /// Close the connection without answering, before acting.
    Drop,
    /// Wait this long, then handle the request normally.
    Stall(Duration),
    /// Park the request before acting until the test releases it, then handle it.
    Pause,
    /// Park the request before acting; on release close the connection
    /// without acting (the request is lost, as when the client died first).
    PauseThenDrop,
    /// Act, then park without answering until the test releases it; the
    /// answer is never sent (the connection is closed afterwards).
    PauseAfterAct,
    /// Act on the request as if `data.attributes.<name>` had not been sent,
    /// and answer success: a TFE that silently does not keep a setting (an
    /// attribute it ignores, or keeps on another endpoint).
    IgnoreAttr(String),
    /// Answer this status with the whole request echoed in the error detail:
    /// method, path, query, `Authorization` and body. Not TFE's behaviour:
    /// a hostile or careless proxy or server (issue #11's "echoed secrets"),
    /// which the client must survive without printing a secret.
    Echo(u16),
    /// Like [`Action::Echo`], as a `text/plain` body: `pad` filler
    /// characters, then the request body, then the method and path. A
    /// proxy's plain error page that quotes the request; `pad` moves an
    /// echoed secret across the point where the client cuts a long body.
    EchoText { status: u16, pad: usize },
}

/// A scripted fault: matcher, action, and how many more times it fires.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub matcher: Matcher,
    pub action: Action,
    pub remaining: u32,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Status(s) => write!(f, "{s}"),
            Action::RateLimit(s) => write!(f, "429={s}"),
            Action::Drop => write!(f, "drop"),
            Action::Stall(d) => write!(f, "stall={}ms", d.as_millis()),
            Action::Pause => write!(f, "pause"),
            Action::PauseThenDrop => write!(f, "pause-drop"),
            Action::PauseAfterAct => write!(f, "pause-after"),
            Action::IgnoreAttr(a) => write!(f, "ignore={a}"),
            Action::Echo(s) => write!(f, "echo={s}"),
            Action::EchoText { status, pad } => write!(f, "echo-text={status}+{pad}"),
        }
    }
}

/// A fault rule that does not parse: the message quotes it and gives the
/// grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad fault {0:?}: expected KIND=ARG:ACTION[*COUNT] with KIND seq|mutating|path|get|post|patch|put|delete \
     and ACTION a status code, 429=SECS, drop, stall=DUR, pause, pause-drop, pause-after, ignore=ATTRIBUTE, echo=STATUS or echo-text=STATUS[+PAD]"
)]
pub struct BadFault(pub String);

impl FaultRule {
    /// Parses `KIND=ARG:ACTION[*COUNT]`, e.g. `seq=3:503`, `mutating=2:drop`,
    /// `path=/api/v2/admin/smtp-settings:429=1.5*2`, `post=/api/v2/organizations:pause`.
    pub fn parse(s: &str) -> Result<FaultRule, BadFault> {
        let usage = || BadFault(s.to_string());
        let (matcher, rest) = s.split_once(':').ok_or_else(usage)?;
        let (kind, arg) = matcher.split_once('=').ok_or_else(usage)?;
        let matcher = match kind {
            "seq" => Matcher::Seq(arg.parse().map_err(|_| usage())?),
            "mutating" => Matcher::Mutating(arg.parse().map_err(|_| usage())?),
            "path" => Matcher::Path {
                method: None,
                path: arg.to_string(),
            },
            "get" | "post" | "patch" | "put" | "delete" => Matcher::Path {
                method: Some(kind.to_ascii_uppercase()),
                path: arg.to_string(),
            },
            _ => return Err(usage()),
        };
        let (action, count) = match rest.rsplit_once('*') {
            Some((a, n)) => (a, n.parse::<u32>().map_err(|_| usage())?),
            None => (rest, 1),
        };
        let action = parse_action(action).ok_or_else(usage)?;
        Ok(FaultRule {
            matcher,
            action,
            remaining: count,
        })
    }

    pub fn matches(&self, seq: u64, mutating_seq: Option<u64>, method: &str, path: &str) -> bool {
        match &self.matcher {
            Matcher::Seq(n) => *n == seq,
            Matcher::Mutating(n) => mutating_seq == Some(*n),
            Matcher::Path { method: m, path: p } => {
                path_matches(p, path) && m.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            }
        }
    }
}

/// `pattern` equals `path`, where a `*` segment stands for any one segment
/// (`/api/v2/teams/*/authentication-token`: ids the test cannot know).
fn path_matches(pattern: &str, path: &str) -> bool {
    let (p, q): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == q.len() && p.iter().zip(&q).all(|(a, b)| *a == "*" || a == b)
}

fn parse_action(a: &str) -> Option<Action> {
    Some(match a {
        "drop" => Action::Drop,
        "pause" => Action::Pause,
        "pause-drop" => Action::PauseThenDrop,
        "pause-after" => Action::PauseAfterAct,
        "stall" => Action::Stall(Duration::from_secs(2)),
        "429" => Action::RateLimit(1.0),
        _ => {
            if let Some(attr) = a.strip_prefix("ignore=").filter(|x| !x.is_empty()) {
                Action::IgnoreAttr(attr.to_string())
            } else if let Some(arg) = a.strip_prefix("echo-text=") {
                let (code, pad) = arg.split_once('+').unwrap_or((arg, "0"));
                let (status, pad): (u16, usize) = (code.parse().ok()?, pad.parse().ok()?);
                (400..=599)
                    .contains(&status)
                    .then_some(Action::EchoText { status, pad })?
            } else if let Some(code) = a.strip_prefix("echo=") {
                let code: u16 = code.parse().ok()?;
                (400..=599).contains(&code).then_some(Action::Echo(code))?
            } else if let Some(d) = a.strip_prefix("stall=") {
                Action::Stall(parse_duration(d).ok()?)
            } else if let Some(secs) = a.strip_prefix("429=") {
                let v: f64 = secs.parse().ok()?;
                (v.is_finite() && v >= 0.0).then_some(Action::RateLimit(v))?
            } else {
                let code: u16 = a.parse().ok()?;
                (400..=599)
                    .contains(&code)
                    .then_some(Action::Status(code))?
            }
        }
    })
}

/// Seeded random faults: each request fails with probability `rate`, with a
/// fault drawn from the ones that request can meet without the client being
/// unable to tell whether the server acted (see [`RandomFaults::draw`]).
pub struct RandomFaults {
    pub rate: f64,
    pub stall: Duration,
    rng: fastrand::Rng,
}

impl RandomFaults {
    pub fn new(rate: f64, seed: u64, stall: Duration) -> Self {
        RandomFaults {
            rate,
            stall,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Draws the fault for one request, if any.
    ///
    /// The requests that are sent at most once only meet faults that say
    /// plainly that TFE did not act (503, 429, a stall): after a dropped
    /// connection or a 502/504 no client can know whether TFE acted, and the
    /// product deliberately refuses to repeat them. They are
    /// `POST /admin/initial-admin-user` (the one-time IACT) and the requests
    /// with a witness: the SMTP PATCH (a test mail) and Twilio's verify (an
    /// SMS). Those cases are covered by the crash and hostile tests instead.
    pub fn draw(&mut self, method: &str, path: &str) -> Option<Action> {
        if self.rng.f64() >= self.rate {
            return None;
        }
        let reset = 0.2 + self.rng.f64() * 0.6;
        let mut choices = vec![
            Action::Status(503),
            Action::RateLimit((reset * 100.0).round() / 100.0),
            Action::Stall(self.stall),
        ];
        let once = method != "GET"
            && matches!(
                path,
                "/admin/initial-admin-user"
                    | "/api/v2/admin/smtp-settings"
                    | "/api/v2/admin/twilio-settings/verify"
            );
        if !once {
            choices.extend([Action::Status(502), Action::Drop, Action::Status(504)]);
            // A transient 500 on a GET or on an idempotent PATCH.
            if method == "GET" || method == "PATCH" {
                choices.push(Action::Status(500));
            }
        }
        let i = self.rng.usize(..choices.len());
        Some(choices.swap_remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules() {
        let r = FaultRule::parse("seq=3:503").unwrap();
        assert_eq!(r.matcher, Matcher::Seq(3));
        assert_eq!(r.action, Action::Status(503));
        let r = FaultRule::parse("post=/api/v2/organizations:429=1.5*2").unwrap();
        assert_eq!(r.action, Action::RateLimit(1.5));
        assert_eq!(r.remaining, 2);
        assert!(r.matches(9, Some(1), "POST", "/api/v2/organizations"));
        assert!(!r.matches(9, None, "GET", "/api/v2/organizations"));
        let r = FaultRule::parse("mutating=2:stall=250ms").unwrap();
        assert_eq!(r.action, Action::Stall(Duration::from_millis(250)));
        for bad in [
            "seq:3",
            "seq=x:503",
            "seq=1:200",
            "foo=1:drop",
            "seq=1:429=nan",
        ] {
            assert!(FaultRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn random_faults_are_reproducible_and_spare_the_admin_post() {
        let draw = |seed| {
            let mut r = RandomFaults::new(0.5, seed, Duration::from_millis(1));
            (0..50).map(|_| r.draw("POST", "/x")).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        let mut r = RandomFaults::new(1.0, 1, Duration::from_millis(1));
        for _ in 0..200 {
            let a = r.draw("POST", "/admin/initial-admin-user").unwrap();
            assert!(
                !matches!(a, Action::Drop | Action::Status(502 | 504 | 500)),
                "{a}"
            );
        }
    }
}
