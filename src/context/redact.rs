//! Secret redaction: every text bound for a model passes through [`redact`] first, so a
//! credential committed by mistake is never copied to a third party.
//!
//! Each secret becomes a fixed placeholder naming its kind (`[REDACTED github-token]`), so the
//! model still understands the code. Nothing else changes and no line is added or removed:
//! diff line numbers are cited by position.
//!
//! Choices, made to keep false positives in ordinary code rare without letting real keys
//! through:
//! - Formats with a distinctive prefix (GitHub, Slack, Google, AWS key ids, JWTs) are matched
//!   anywhere. AWS key ids and Google keys must stand alone, not sit inside a longer base64
//!   run, so base64 blobs (images embedded in tests) are left alone.
//! - Values without a prefix are only looked at when assigned to a secret-like name
//!   (`password`, `secret`, `token`, `api_key`, ...), and only redacted when they look random
//!   (Shannon entropy, see [`looks_random`]). So `password = "changeme"` and
//!   `token = get_token()` stay, and git SHAs, UUIDs and base64 data are untouched unless
//!   assigned to such a name, where redacting them is the safe side.
//! - Private-key blocks keep their BEGIN/END lines and each line's leading diff marker or line
//!   number; only the base64 body goes. The first body run becomes the placeholder, the others
//!   become empty, so a 27-line key costs a few tokens, not 27 placeholders.
//! - Quoted values containing whitespace are prose (error messages, prompts), not secrets.
//! - Not covered: XML elements (`<password>..</password>`), secrets split across lines other
//!   than private keys, and low-entropy real passwords (indistinguishable from placeholders).
//!
//! Every detector runs in time linear in the input: the regex crate guarantees it for the
//! patterns, and the hand-written scanners look at each byte a bounded number of times.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// What kind of secret was found; its label names it in the placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretKind {
    /// `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` and `github_pat_` tokens.
    GithubToken,
    /// `AKIA…` / `ASIA…` access key ids.
    AwsAccessKeyId,
    /// A 40-character secret access key assigned to an AWS-looking name.
    AwsSecretAccessKey,
    /// `xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xoxs-` (and `xoxe-`, `xoxo-`, `xapp-`) tokens.
    SlackToken,
    /// The secret path of a `hooks.slack.com` webhook URL.
    SlackWebhook,
    /// `AIza…` keys.
    GoogleApiKey,
    /// The body of a `-----BEGIN … PRIVATE KEY-----` block (RSA, EC, OPENSSH, PGP, PKCS#8…).
    PrivateKey,
    /// A JSON Web Token (three base64url parts, header starting `eyJ`).
    Jwt,
    /// The password of a `scheme://user:password@host` URL.
    UrlPassword,
    /// A random-looking `Bearer` credential.
    BearerToken,
    /// A random-looking value assigned to a secret-like name.
    AssignedSecret,
}

impl SecretKind {
    /// Every kind, for callers that tally or document them.
    pub const ALL: [SecretKind; 11] = [
        SecretKind::GithubToken,
        SecretKind::AwsAccessKeyId,
        SecretKind::AwsSecretAccessKey,
        SecretKind::SlackToken,
        SecretKind::SlackWebhook,
        SecretKind::GoogleApiKey,
        SecretKind::PrivateKey,
        SecretKind::Jwt,
        SecretKind::UrlPassword,
        SecretKind::BearerToken,
        SecretKind::AssignedSecret,
    ];

    /// The short name used in placeholders and logs.
    pub fn label(self) -> &'static str {
        match self {
            SecretKind::GithubToken => "github-token",
            SecretKind::AwsAccessKeyId => "aws-access-key-id",
            SecretKind::AwsSecretAccessKey => "aws-secret-access-key",
            SecretKind::SlackToken => "slack-token",
            SecretKind::SlackWebhook => "slack-webhook",
            SecretKind::GoogleApiKey => "google-api-key",
            SecretKind::PrivateKey => "private-key",
            SecretKind::Jwt => "jwt",
            SecretKind::UrlPassword => "url-password",
            SecretKind::BearerToken => "bearer-token",
            SecretKind::AssignedSecret => "secret",
        }
    }

    /// The text that replaces a secret of this kind: fixed, so the output is deterministic and
    /// tells the model what stood there.
    pub fn placeholder(self) -> &'static str {
        match self {
            SecretKind::GithubToken => "[REDACTED github-token]",
            SecretKind::AwsAccessKeyId => "[REDACTED aws-access-key-id]",
            SecretKind::AwsSecretAccessKey => "[REDACTED aws-secret-access-key]",
            SecretKind::SlackToken => "[REDACTED slack-token]",
            SecretKind::SlackWebhook => "[REDACTED slack-webhook]",
            SecretKind::GoogleApiKey => "[REDACTED google-api-key]",
            SecretKind::PrivateKey => "[REDACTED private-key]",
            SecretKind::Jwt => "[REDACTED jwt]",
            SecretKind::UrlPassword => "[REDACTED url-password]",
            SecretKind::BearerToken => "[REDACTED bearer-token]",
            SecretKind::AssignedSecret => "[REDACTED secret]",
        }
    }
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Whether `text` holds a placeholder of [`redact`]: text written by a model that saw the
/// redacted code, which must not be written back into the code.
pub fn has_placeholder(text: &str) -> bool {
    SecretKind::ALL
        .iter()
        .any(|kind| text.contains(kind.placeholder()))
}

/// A text with its secrets replaced, and what was replaced (one entry per secret, in text
/// order; a private-key block counts once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    pub found: Vec<SecretKind>,
}

impl Redacted {
    /// True when nothing was redacted.
    pub fn is_clean(&self) -> bool {
        self.found.is_empty()
    }
}

/// Replaces every secret in `text` with its kind's placeholder; see the module docs for what
/// counts as a secret. Line count and everything outside the secrets are preserved.
pub fn redact(text: &str) -> Redacted {
    let mut hits = Hits::default();
    // Order is priority: a later detector never takes a span an earlier one claimed, so the
    // specific formats win over the generic assignment rule.
    private_keys(text, &mut hits);
    urls_with_passwords(text, &mut hits);
    slack_webhooks(text, &mut hits);
    prefixed_tokens(text, &mut hits);
    bearer_tokens(text, &mut hits);
    assignments(text, &mut hits);
    hits.apply(text)
}

/// The patterns below are constants: if one failed to compile, every test would fail, so an
/// `expect` here is a bug report, not a runtime failure mode.
fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).expect("redaction patterns are valid regexes")
}

static PEM_BEGIN: LazyLock<Regex> =
    LazyLock::new(|| compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"));
static PEM_END: LazyLock<Regex> =
    LazyLock::new(|| compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"));
static URL_WITH_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    compile(r#"(?-u:\b)[A-Za-z][A-Za-z0-9+.-]*://[^\s:@/?#"'`<>]*:[^\s@/?#"'`<>]+@"#)
});
static SLACK_WEBHOOK: LazyLock<Regex> = LazyLock::new(|| {
    compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{8,}")
});
static BEARER: LazyLock<Regex> =
    LazyLock::new(|| compile(r"(?i)(?-u:\b)bearer[ \t]+[A-Za-z0-9._~+/-]{20,}=*"));
/// A secret-like name and its assignment operator (`=`, `:`, `:=`, `=>`, `: Type =`); the
/// value after it is parsed by hand (see [`assigned_value`]) to stay linear.
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    compile(concat!(
        r"(?i)[A-Za-z0-9_.-]*",
        r"(?:passw(?:or)?d|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key",
        r"|auth[_-]?key|credential)",
        r#"[A-Za-z0-9_.-]*["']?[ \t]*"#,
        r"(?::[ \t]*[&A-Za-z_][A-Za-z0-9_.:<>&'\[\]]*[ \t]*=|:=|=>|:|=)[ \t]*",
    ))
});

/// Formats recognised by their shape alone. `standalone` ones must not be part of a longer
/// base64 run (see [`stands_alone`]).
struct Prefixed {
    regex: Regex,
    kind: SecretKind,
    standalone: bool,
}

static PREFIXED: LazyLock<[Prefixed; 5]> = LazyLock::new(|| {
    let p = |pattern: &str, kind, standalone| Prefixed {
        regex: compile(pattern),
        kind,
        standalone,
    };
    [
        // JWTs first: their payload could otherwise be read as something else.
        p(
            r"(?-u:\b)eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
            SecretKind::Jwt,
            false,
        ),
        p(
            r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})(?-u:\b)",
            SecretKind::GithubToken,
            false,
        ),
        p(
            r"(?-u:\b)(?:xox[abeoprs]-[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Za-z0-9-]{10,})",
            SecretKind::SlackToken,
            false,
        ),
        p(
            r"(?-u:\b)AIza[A-Za-z0-9_-]{35}",
            SecretKind::GoogleApiKey,
            true,
        ),
        p(
            r"(?-u:\b)(?:A3T[A-Z0-9]|AKIA|ASIA)[A-Z0-9]{16}",
            SecretKind::AwsAccessKeyId,
            true,
        ),
    ]
});

/// One claimed span of the input.
struct Hit {
    end: usize,
    replacement: &'static str,
    /// Whether this span is reported in [`Redacted::found`] (later runs of a key block are not).
    counted: Option<SecretKind>,
}

/// Non-overlapping spans to replace, keyed by start.
#[derive(Default)]
struct Hits {
    by_start: BTreeMap<usize, Hit>,
}

impl Hits {
    /// Claims `start..end` unless empty or overlapping an earlier claim; says whether it did.
    fn claim(
        &mut self,
        start: usize,
        end: usize,
        replacement: &'static str,
        counted: Option<SecretKind>,
    ) -> bool {
        if start >= end {
            return false;
        }
        // Claims are disjoint, so only the last one starting before `end` can overlap.
        if let Some((_, before)) = self.by_start.range(..end).next_back()
            && before.end > start
        {
            return false;
        }
        self.by_start.insert(
            start,
            Hit {
                end,
                replacement,
                counted,
            },
        );
        true
    }

    fn claim_secret(&mut self, start: usize, end: usize, kind: SecretKind) -> bool {
        self.claim(start, end, kind.placeholder(), Some(kind))
    }

    fn apply(self, text: &str) -> Redacted {
        let mut out = String::with_capacity(text.len());
        let mut found = Vec::new();
        let mut at = 0;
        for (start, hit) in self.by_start {
            out.push_str(&text[at..start]);
            out.push_str(hit.replacement);
            found.extend(hit.counted);
            at = hit.end;
        }
        out.push_str(&text[at..]);
        Redacted { text: out, found }
    }
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// Whether `start..end` is not glued to a longer base64/base64url run, so that a key-shaped
/// substring of embedded binary data is not mistaken for a key.
fn stands_alone(text: &str, start: usize, end: usize) -> bool {
    let bytes = text.as_bytes();
    let before_ok = start == 0 || !matches!(bytes[start - 1], b'+' | b'/' | b'-');
    let after_ok = bytes
        .get(end)
        .is_none_or(|&b| !(is_base64(b) || matches!(b, b'-' | b'_')));
    before_ok && after_ok
}

fn prefixed_tokens(text: &str, hits: &mut Hits) {
    for p in PREFIXED.iter() {
        for m in p.regex.find_iter(text) {
            if !p.standalone || stands_alone(text, m.start(), m.end()) {
                hits.claim_secret(m.start(), m.end(), p.kind);
            }
        }
    }
}

fn slack_webhooks(text: &str, hits: &mut Hits) {
    for m in SLACK_WEBHOOK.find_iter(text) {
        // Keep `https://hooks.slack.com/services/` so the model knows what the URL is.
        let kept = m
            .as_str()
            .char_indices()
            .filter(|&(_, c)| c == '/')
            .nth(3)
            .map_or(0, |(i, _)| i + 1);
        hits.claim_secret(m.start() + kept, m.end(), SecretKind::SlackWebhook);
    }
}

fn urls_with_passwords(text: &str, hits: &mut Hits) {
    let bytes = text.as_bytes();
    for m in URL_WITH_PASSWORD.find_iter(text) {
        let host_ok = bytes
            .get(m.end())
            .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'[');
        let Some(scheme_end) = m.as_str().find("://") else {
            continue;
        };
        let userinfo = &m.as_str()[scheme_end + 3..m.as_str().len() - 1];
        let Some(colon) = userinfo.find(':') else {
            continue;
        };
        let password = &userinfo[colon + 1..];
        if !host_ok || is_reference(password) || password.bytes().all(|b| b == b'*') {
            continue;
        }
        let start = m.start() + scheme_end + 3 + colon + 1;
        hits.claim_secret(start, start + password.len(), SecretKind::UrlPassword);
    }
}

fn bearer_tokens(text: &str, hits: &mut Hits) {
    for m in BEARER.find_iter(text) {
        // The value's characters exclude blanks, so it is what follows the last one.
        let value = m.as_str().rsplit([' ', '\t']).next().unwrap_or_default();
        let value_at = m.end() - value.len();
        if !is_placeholder(value) && looks_random(value) {
            hits.claim_secret(value_at, m.end(), SecretKind::BearerToken);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Private-key blocks

/// How a line inside a key block reads, once its diff/line-number prefix is set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Blank,
    /// `Proc-Type: 4,ENCRYPTED`, `Version: GnuPG`: armor headers, not secret, kept.
    Header,
    Body,
    /// Anything else ends the block (a BEGIN marker in code, a truncated key).
    Other,
}

/// Calls `run(start, end)` for each base64 run of `bytes`, skipping backslash escapes (so the
/// `n` of `\n` inside a string literal is not taken for key data). Returns false, after
/// reporting nothing more, at the first byte a key line could not contain.
fn scan_runs(bytes: &[u8], mut run: impl FnMut(usize, usize)) -> bool {
    let mut i = 0;
    let mut start = None;
    while i < bytes.len() {
        let b = bytes[i];
        if is_base64(b) {
            start.get_or_insert(i);
            i += 1;
            continue;
        }
        if let Some(s) = start.take() {
            run(s, i);
        }
        match b {
            b'\\' => i += 2,
            b' ' | b'\t' | b'\r' | b'"' | b'\'' | b'`' | b',' => i += 1,
            _ => return false,
        }
    }
    if let Some(s) = start {
        run(s, bytes.len());
    }
    true
}

/// Length of a line's leading indentation, numbered-diff line number and `+`/`-` marker,
/// which stay when the key data after them goes.
fn prefix_len(line: &[u8]) -> usize {
    let blank = |i: &mut usize| {
        while *i < line.len() && matches!(line[*i], b' ' | b'\t') {
            *i += 1;
        }
    };
    let mut i = 0;
    blank(&mut i);
    let digits = i;
    while i < line.len() && line[i].is_ascii_digit() {
        i += 1;
    }
    if i > digits && i < line.len() && matches!(line[i], b' ' | b'\t') {
        blank(&mut i);
    } else {
        i = digits;
    }
    if i < line.len() && matches!(line[i], b'+' | b'-') {
        i += 1;
    }
    blank(&mut i);
    i
}

fn is_armor_header(line: &[u8]) -> bool {
    let Some(&first) = line.first() else {
        return false;
    };
    let name_len = line
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'-')
        .count();
    first.is_ascii_alphabetic() && line[name_len..].starts_with(b": ")
}

/// A body line holds one long base64 run (short ones are `+` concatenations); the last line
/// before END may be short.
fn shape(line: &[u8], before_end: bool) -> Shape {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Shape::Blank;
    }
    if is_armor_header(line) {
        return Shape::Header;
    }
    let (mut long, mut longest) = (0, 0);
    let clean = scan_runs(line, |s, e| {
        if e - s >= 2 {
            long += 1;
            longest = longest.max(e - s);
        }
    });
    if clean && long == 1 && (longest >= 16 || before_end) {
        Shape::Body
    } else {
        Shape::Other
    }
}

fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| from + i)
}

/// The runs of one key block: the first becomes the placeholder, the rest disappear.
struct KeyBlock {
    first: bool,
}

impl KeyBlock {
    /// Redacts the base64 runs of `from..to` if that span could be key data.
    fn redact(&mut self, text: &str, from: usize, to: usize, hits: &mut Hits) {
        let bytes = &text.as_bytes()[from..to];
        if !scan_runs(bytes, |_, _| {}) {
            return;
        }
        scan_runs(bytes, |s, e| {
            if e - s < 2 {
                return;
            }
            let (replacement, counted) = if self.first {
                (
                    SecretKind::PrivateKey.placeholder(),
                    Some(SecretKind::PrivateKey),
                )
            } else {
                ("", None)
            };
            if hits.claim(from + s, from + e, replacement, counted) {
                self.first = false;
            }
        });
    }
}

fn private_keys(text: &str, hits: &mut Hits) {
    let bytes = text.as_bytes();
    let mut pos = 0;
    while let Some(begin) = PEM_BEGIN.find_at(text, pos) {
        let mut block = KeyBlock { first: true };
        let first_end = line_end(bytes, begin.end());
        // A one-line key, as in a JSON service-account file: `...KEY-----\nMII...\n-----END`.
        if let Some(end) = PEM_END.find(&text[begin.end()..first_end]) {
            block.redact(text, begin.end(), begin.end() + end.start(), hits);
            pos = begin.end() + end.end();
            continue;
        }
        if shape(&bytes[begin.end()..first_end], false) == Shape::Body {
            block.redact(text, begin.end(), first_end, hits);
        }
        let mut at = first_end;
        pos = loop {
            if at >= bytes.len() {
                break bytes.len();
            }
            let start = at + 1;
            let end = line_end(bytes, start);
            let line = &text[start..end];
            let prefix = prefix_len(line.as_bytes());
            if let Some(marker) = PEM_END.find(line) {
                block.redact(
                    text,
                    start + prefix.min(marker.start()),
                    start + marker.start(),
                    hits,
                );
                break start + marker.end();
            }
            let before_end =
                end < bytes.len() && PEM_END.is_match(&text[end + 1..line_end(bytes, end + 1)]);
            match shape(&line.as_bytes()[prefix..], before_end) {
                Shape::Blank | Shape::Header => {}
                Shape::Body => block.redact(text, start + prefix, end, hits),
                Shape::Other => break start,
            }
            at = end;
        };
    }
}

// ---------------------------------------------------------------------------------------------
// Values assigned to secret-like names

/// First index at or after a position whose byte satisfies a predicate, remembered so that
/// increasing queries scan each byte once.
struct NextByte {
    is_stop: fn(u8) -> bool,
    from: usize,
    found: usize,
}

impl NextByte {
    fn new(is_stop: fn(u8) -> bool) -> NextByte {
        NextByte {
            is_stop,
            from: usize::MAX,
            found: 0,
        }
    }

    fn after(&mut self, bytes: &[u8], pos: usize) -> usize {
        if pos >= self.from && pos <= self.found {
            return self.found;
        }
        self.from = pos;
        self.found = bytes[pos..]
            .iter()
            .position(|&b| (self.is_stop)(b))
            .map_or(bytes.len(), |i| pos + i);
        self.found
    }
}

fn ends_bare_value(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b'"' | b'\'' | b'`' | b',' | b';' | b'&' | b')' | b']' | b'}' | b'<' | b'>'
        )
}

/// Scanners for the end of each kind of value.
struct ValueEnds {
    newline: NextByte,
    double: NextByte,
    single: NextByte,
    back: NextByte,
    bare: NextByte,
}

/// Where the value after an assignment operator sits: `(start, end, quoted)`.
fn assigned_value(bytes: &[u8], at: usize, ends: &mut ValueEnds) -> Option<(usize, usize, bool)> {
    let &first = bytes.get(at)?;
    let close = match first {
        b'"' => &mut ends.double,
        b'\'' => &mut ends.single,
        b'`' => &mut ends.back,
        b'=' => return None, // `==`: a comparison, not an assignment.
        b if ends_bare_value(b) => return None,
        _ => return Some((at, ends.bare.after(bytes, at), false)),
    };
    let end = close.after(bytes, at + 1);
    (end < ends.newline.after(bytes, at + 1)).then_some((at + 1, end, true))
}

fn assignments(text: &str, hits: &mut Hits) {
    let bytes = text.as_bytes();
    let mut ends = ValueEnds {
        newline: NextByte::new(|b| b == b'\n'),
        double: NextByte::new(|b| b == b'"'),
        single: NextByte::new(|b| b == b'\''),
        back: NextByte::new(|b| b == b'`'),
        bare: NextByte::new(ends_bare_value),
    };
    // End of the last unquoted value judged. Assignments found inside it
    // (`a=token=token=...`) were part of that value; skipping them keeps this linear.
    let mut judged_until = 0;
    for m in ASSIGNMENT.find_iter(text) {
        if m.start() < judged_until {
            continue;
        }
        let Some((start, end, quoted)) = assigned_value(bytes, m.end(), &mut ends) else {
            continue;
        };
        if !quoted {
            judged_until = end;
        }
        let name_len = m
            .as_str()
            .bytes()
            .take_while(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            .count();
        let name = &m.as_str()[..name_len];
        if let Some(kind) = judge(name, &text[start..end], quoted) {
            hits.claim_secret(start, end, kind);
        }
    }
}

/// Decides whether a value assigned to a secret-like name is a secret worth redacting.
fn judge(name: &str, value: &str, quoted: bool) -> Option<SecretKind> {
    if is_reference(value) || (!quoted && looks_like_code(value)) {
        return None;
    }
    if is_aws_name(name)
        && value.len() == 40
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+'))
    {
        return Some(SecretKind::AwsSecretAccessKey);
    }
    let prose_or_other_rule = value.bytes().any(|b| b.is_ascii_whitespace())
        || value.contains("://")
        || value.contains("-----");
    if prose_or_other_rule || is_placeholder(value) || !looks_random(value) {
        return None;
    }
    Some(SecretKind::AssignedSecret)
}

fn is_aws_name(name: &str) -> bool {
    let squashed: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    squashed.contains("aws") || squashed.contains("secretaccesskey")
}

/// Environment and template references (`${TOKEN}`, `$TOKEN`, `{{ secrets.X }}`, `%(pw)s`,
/// `<password>`) name a secret kept elsewhere; the model should see them.
fn is_reference(value: &str) -> bool {
    value.starts_with('$')
        || value.contains("${")
        || value.contains("{{")
        || value.contains("%(")
        || value.contains("#{")
        || (value.starts_with('<') && value.ends_with('>'))
}

/// Unquoted code on the right-hand side: a call, an index, a field path, a plain identifier
/// without digits (`token = self.token`, `password = hash(pw)`, `key: SecretString`).
fn looks_like_code(value: &str) -> bool {
    if value.contains(['(', '[', '{', '$']) {
        return true;
    }
    let has_separator = value.contains('.') || value.contains("::") || value.contains("->");
    let is_path = value
        .split("::")
        .flat_map(|s| s.split("->"))
        .flat_map(|s| s.split('.'))
        .all(|segment| {
            segment
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
    is_path && (has_separator || !value.bytes().any(|b| b.is_ascii_digit()))
}

/// Documentation placeholders and already-redacted values.
fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    [
        "example",
        "changeme",
        "change_me",
        "placeholder",
        "your_",
        "your-",
        "xxxx",
        "****",
        "redacted",
        "dummy",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

/// Shannon entropy in bits per byte.
fn entropy(value: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in value {
        counts[usize::from(b)] += 1;
    }
    let n = value.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Calibrated on examples rather than theory:
/// - hex (16+ digits, letters and digits both present): at least 2.8 bits per byte, since
///   a 16-letter alphabet caps entropy at 4 and random 32-digit keys often score under 3.5;
/// - otherwise at least 10 bytes and 3.0 bits, with either three character classes (lower,
///   upper, digit, other) or 3.5 bits.
///
/// So `changeme` (8 bytes), `password123` (3.28 bits, two classes) and `mysecretpassword`
/// (3.45 bits, one class) stay; a random 28-character base62 string (4.8 bits), random hex
/// keys and `Tr0ub4dor&3` (3.28 bits, four classes) go.
fn looks_random(value: &str) -> bool {
    let bytes = value.as_bytes();
    let has = |class: fn(&u8) -> bool| bytes.iter().any(class);
    let bits = entropy(bytes);
    if bytes.iter().all(u8::is_ascii_hexdigit) {
        return bytes.len() >= 16
            && has(u8::is_ascii_digit)
            && has(u8::is_ascii_alphabetic)
            && bits >= 2.8;
    }
    if bytes.len() < 10 {
        return false;
    }
    let classes = [
        has(u8::is_ascii_lowercase),
        has(u8::is_ascii_uppercase),
        has(u8::is_ascii_digit),
        has(|b| !b.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|&&present| present)
    .count();
    bits >= 3.0 && (classes >= 3 || bits >= 3.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    // Fixtures are assembled with `concat!` so that the literal tokens never appear in the
    // source: secret scanners (GitHub push protection, Critic itself) would flag them.
    const GITHUB_CLASSIC: &str = concat!("gh", "p_", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
    const GITHUB_FINE: &str = concat!(
        "github",
        "_pat_",
        "11ABCDEFG0123456789abc_",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVW"
    );
    const AWS_ID: &str = concat!("AKIA", "Z3K9QW7XPLM2RT4V");
    const AWS_SECRET: &str = concat!("wJalrXUtnFEMI", "/K7MDENG/bPxRfiCYzq8N3kQ2pL");
    const SLACK_BOT: &str = concat!("xox", "b-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx");
    const GOOGLE: &str = concat!("AI", "zaSyB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z");
    const JWT: &str = concat!(
        "eyJ",
        "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
        ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
        ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    );
    const KEY_LINE_1: &str = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun";
    const KEY_LINE_2: &str = "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK";
    const KEY_LAST: &str = "Zm9vYmFy==";

    fn begin(kind: &str) -> String {
        format!("-----BEGIN {kind}PRIVATE KEY-----")
    }

    fn end(kind: &str) -> String {
        format!("-----END {kind}PRIVATE KEY-----")
    }

    fn assert_redacted(input: &str, secret: &str, kind: SecretKind) -> Redacted {
        let out = redact(input);
        assert!(
            !out.text.contains(secret),
            "{kind} leaked: {:?} -> {:?}",
            input,
            out.text
        );
        assert!(out.text.contains(kind.placeholder()), "{:?}", out.text);
        assert!(out.found.contains(&kind), "{:?}", out.found);
        assert_eq!(input.lines().count(), out.text.lines().count());
        out
    }

    fn assert_untouched(input: &str) {
        let out = redact(input);
        assert_eq!(out.text, input, "changed: {:?}", out.found);
        assert!(out.is_clean());
    }

    #[test]
    fn placeholders_name_their_kind() {
        for kind in SecretKind::ALL {
            assert_eq!(kind.placeholder(), format!("[REDACTED {kind}]"));
            assert!(has_placeholder(&format!(
                "let t = \"{}\";",
                kind.placeholder()
            )));
        }
        assert!(!has_placeholder("let t = \"[REDACTED]\";"));
    }

    #[test]
    fn github_tokens() {
        for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
            let token = format!("{prefix}{}", &GITHUB_CLASSIC[4..]);
            let input = format!("let t = \"{token}\";\n");
            let out = assert_redacted(&input, &token, SecretKind::GithubToken);
            assert_eq!(out.text, "let t = \"[REDACTED github-token]\";\n");
        }
        assert_redacted(
            &format!("GH={GITHUB_FINE} next"),
            GITHUB_FINE,
            SecretKind::GithubToken,
        );
    }

    #[test]
    fn aws_access_key_id_and_secret() {
        let input = format!(
            "[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n"
        );
        let out = assert_redacted(&input, AWS_ID, SecretKind::AwsAccessKeyId);
        assert!(!out.text.contains(AWS_SECRET));
        assert_eq!(
            out.found,
            vec![SecretKind::AwsAccessKeyId, SecretKind::AwsSecretAccessKey]
        );
        let json = format!("{{\"SecretAccessKey\": \"{AWS_SECRET}\"}}");
        assert_redacted(&json, AWS_SECRET, SecretKind::AwsSecretAccessKey);
        let temporary = AWS_ID.replacen("AKIA", "ASIA", 1);
        assert_redacted(
            &format!("id={temporary}"),
            &temporary,
            SecretKind::AwsAccessKeyId,
        );
    }

    #[test]
    fn slack_tokens_and_webhooks() {
        for prefix in ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-"] {
            let token = format!("{prefix}{}", &SLACK_BOT[5..]);
            assert_redacted(&format!("SLACK={token}\n"), &token, SecretKind::SlackToken);
        }
        let path = concat!("T00000000/B00000000/", "XXXXXXXXxxxxxxxxXXXXXXXX");
        let url = format!("https://hooks.slack.com/services/{path}");
        let out = assert_redacted(&format!("url: {url}\n"), path, SecretKind::SlackWebhook);
        assert_eq!(
            out.text,
            "url: https://hooks.slack.com/services/[REDACTED slack-webhook]\n"
        );
    }

    #[test]
    fn google_api_key() {
        assert_redacted(
            &format!("const KEY = '{GOOGLE}';"),
            GOOGLE,
            SecretKind::GoogleApiKey,
        );
    }

    #[test]
    fn jwt() {
        let out = assert_redacted(
            &format!("curl -H 'Authorization: Bearer {JWT}'"),
            JWT,
            SecretKind::Jwt,
        );
        assert_eq!(out.found, vec![SecretKind::Jwt], "one secret, one finding");
    }

    #[test]
    fn bearer_token() {
        let token = "q8Zr3X9vLm2PwT7yKd4NcB6sHf1J";
        assert_redacted(
            &format!("Authorization: Bearer {token}"),
            token,
            SecretKind::BearerToken,
        );
        assert_untouched("Authorization: Bearer xxxxxxxxxxxxxxxxxxxxxxxxxxx");
    }

    #[test]
    fn url_passwords_keep_scheme_user_and_host() {
        let out = assert_redacted(
            "DATABASE_URL=postgres://critic:s3cr3t-Pa55@db.internal:5432/critic\n",
            "s3cr3t-Pa55",
            SecretKind::UrlPassword,
        );
        assert_eq!(
            out.text,
            "DATABASE_URL=postgres://critic:[REDACTED url-password]@db.internal:5432/critic\n"
        );
        let out = redact("redis://:hunter2@cache:6379");
        assert_eq!(out.text, "redis://:[REDACTED url-password]@cache:6379");
        // References to a password kept elsewhere, and URLs without one, stay.
        assert_untouched("url = \"postgres://app:${DB_PASSWORD}@db/app\"");
        assert_untouched("see http://example.com:8080/path and git@github.com:org/repo.git");
    }

    fn key_block(kind: &str, prefix: &str) -> String {
        format!(
            "{prefix}{}\n{prefix}{KEY_LINE_1}\n{prefix}{KEY_LINE_2}\n{prefix}{KEY_LAST}\n{prefix}{}\n",
            begin(kind),
            end(kind)
        )
    }

    fn assert_key_gone(out: &Redacted) {
        for part in [KEY_LINE_1, KEY_LINE_2, KEY_LAST] {
            assert!(!out.text.contains(part), "{}", out.text);
        }
        assert_eq!(out.found, vec![SecretKind::PrivateKey]);
    }

    #[test]
    fn private_key_blocks_of_every_kind() {
        for kind in ["RSA ", "EC ", "OPENSSH ", "DSA ", "ENCRYPTED ", ""] {
            let input = format!("key:\n{}done\n", key_block(kind, ""));
            let out = assert_redacted(&input, KEY_LINE_1, SecretKind::PrivateKey);
            assert_key_gone(&out);
            assert_eq!(
                out.text,
                format!(
                    "key:\n{}\n[REDACTED private-key]\n\n\n{}\ndone\n",
                    begin(kind),
                    end(kind)
                )
            );
        }
    }

    #[test]
    fn pgp_private_key_block_keeps_armor_headers() {
        let input = format!(
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n{KEY_LINE_1}\n=AbCd\n\
             -----END PGP PRIVATE KEY BLOCK-----\n"
        );
        let out = assert_redacted(&input, KEY_LINE_1, SecretKind::PrivateKey);
        assert!(!out.text.contains("=AbCd"));
        assert!(out.text.contains("Version: GnuPG v2"));
    }

    #[test]
    fn private_key_in_a_diff_keeps_markers_and_line_numbers() {
        let patch = format!("@@ -0,0 +1,5 @@\n{}", key_block("RSA ", "+"));
        let out = assert_redacted(&patch, KEY_LINE_1, SecretKind::PrivateKey);
        assert_key_gone(&out);
        assert!(
            out.text.lines().skip(1).all(|l| l.starts_with('+')),
            "{}",
            out.text
        );
        let numbered: String = key_block("RSA ", "")
            .lines()
            .enumerate()
            .map(|(i, l)| format!("{:>5} +{l}\n", i + 1))
            .collect();
        let out = assert_redacted(&numbered, KEY_LINE_1, SecretKind::PrivateKey);
        assert_key_gone(&out);
        assert!(
            out.text
                .contains("    2 +[REDACTED private-key]\n    3 +\n")
        );
    }

    #[test]
    fn private_key_in_string_literals() {
        // A service-account JSON file: the whole key on one line with `\n` escapes.
        let json = format!(
            "{{\"private_key\": \"{}\\n{KEY_LINE_1}\\n{KEY_LAST}\\n{}\\n\"}}\n",
            begin(""),
            end("")
        );
        let out = assert_redacted(&json, KEY_LINE_1, SecretKind::PrivateKey);
        assert_key_gone(&out);
        assert!(
            out.text
                .contains("-----\\n[REDACTED private-key]\\n\\n-----END")
        );
        // Python implicit concatenation, one line per string.
        let python = format!(
            "KEY = (\n    \"{}\\n\"\n    \"{KEY_LINE_1}\\n\"\n    \"{KEY_LAST}\\n\"\n    \"{}\\n\"\n)\n",
            begin("RSA "),
            end("RSA ")
        );
        let out = assert_redacted(&python, KEY_LINE_1, SecretKind::PrivateKey);
        assert_key_gone(&out);
        assert!(
            out.text
                .contains("    \"[REDACTED private-key]\\n\"\n    \"\\n\"\n")
        );
    }

    #[test]
    fn truncated_private_key_is_redacted_up_to_the_code_after_it() {
        let input = format!(
            "{}\n{KEY_LINE_1}\n{KEY_LINE_2}\nfn main() {{}}\n",
            begin("RSA ")
        );
        let out = assert_redacted(&input, KEY_LINE_2, SecretKind::PrivateKey);
        assert!(out.text.ends_with("\n\nfn main() {}\n"), "{}", out.text);
    }

    #[test]
    fn code_that_mentions_key_markers_is_untouched() {
        assert_untouched(&format!(
            "if pem.starts_with(\"{}\") {{\n    return parse_key(pem, \"{}\");\n}}\nreturn None\n",
            begin("RSA "),
            end("RSA ")
        ));
        assert_untouched(&format!(
            "let s = find(\"{}\") + find(\"{}\");",
            begin(""),
            end("")
        ));
    }

    #[test]
    fn high_entropy_values_assigned_to_secret_names() {
        let value = "q8Zr3X9vLm2PwT7yKd4NcB6sHf1J";
        for form in [
            format!("secret = \"{value}\""),
            format!("password: {value}"),
            format!("API_KEY={value}"),
            format!("{{\"client_secret\": \"{value}\"}}"),
            format!("apikey => '{value}'"),
            format!("access_key := `{value}`"),
            format!("private_key: &str = \"{value}\";"),
            format!("passwd={value}&user=x"),
            format!("export DB_PASSWORD=\"{value}\""),
            format!("https://api.example.com/?access_token={value}"),
        ] {
            let out = assert_redacted(&form, value, SecretKind::AssignedSecret);
            assert_eq!(out.text, form.replace(value, "[REDACTED secret]"));
        }
        assert_redacted(
            "token = 'Tr0ub4dor&3'",
            "Tr0ub4dor&3",
            SecretKind::AssignedSecret,
        );
        assert_redacted(
            "hmac_secret = \"3f786850e387550fdab836ed7e6dc881\"",
            "3f786850e387550fdab836ed7e6dc881",
            SecretKind::AssignedSecret,
        );
    }

    #[test]
    fn placeholders_references_and_code_are_not_secrets() {
        for code in [
            "password = \"changeme\"",
            "password = \"password123\"",
            "password: \"\"",
            "token = get_token()",
            "token = self.token",
            "let token = Token::new(&config);",
            "api_key: Option<String>,",
            "pub api_key: SecretString,",
            "fn login(password: &str, token: String) {}",
            "if password == expected_password_hash {",
            "secret = os.environ[\"SECRET\"]",
            "token: ${{ secrets.GITHUB_TOKEN }}",
            "DB_PASSWORD=${DB_PASSWORD}",
            "password = \"<your password here>\"",
            "api_key = \"your-api-key-goes-here\"",
            "token_error = \"The token has expired, please sign in again\"",
            "max_tokens: 4096",
            "access_key_id: AKIAIOSFODNN7EXAMPLE_not",
            "tokens = tokenizer.encode(text)",
            "password_reset_url = 'https://example.com/reset'",
        ] {
            assert_untouched(code);
        }
    }

    #[test]
    fn ordinary_code_hashes_uuids_and_base64_data_are_untouched() {
        assert_untouched(
            "commit 3f786850e387550fdab836ed7e6dc881de23001b\n\
             Author: Jane <jane@example.com>\n\
             id = \"550e8400-e29b-41d4-a716-446655440000\"\n\
             sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             fn main() { let x = vec![1, 2, 3]; println!(\"{x:?}\"); }\n",
        );
        // A PNG-like blob, deterministic pseudo-random bytes in base64.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let bytes: Vec<u8> = (0..3000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        let blob = base64(&bytes);
        assert_untouched(&format!(
            "const IMG: &str = \"data:image/png;base64,iVBORw0KGgo{blob}\";\n"
        ));
        assert_untouched(&format!(
            "fixture = [\n{}\n]\n",
            blob.as_bytes()
                .chunks(76)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }

    fn base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
        out
    }

    #[test]
    fn redaction_is_idempotent_and_keeps_line_structure() {
        let input = format!(
            "a\r\ntoken = \"{GITHUB_CLASSIC}\"\r\n{}\npassword: q8Zr3X9vLm2PwT7yKd4NcB6sHf1J\n\nü {JWT} ü\n",
            key_block("EC ", " ")
        );
        let once = redact(&input);
        assert_eq!(input.lines().count(), once.text.lines().count());
        assert_eq!(input.matches('\n').count(), once.text.matches('\n').count());
        assert_eq!(once.found.len(), 4, "{:?}", once.found);
        let twice = redact(&once.text);
        assert_eq!(twice.text, once.text);
        assert!(twice.is_clean(), "{:?}", twice.found);
    }

    #[test]
    fn found_lists_every_secret_in_text_order() {
        let input = format!("{GOOGLE} {AWS_ID}\n{GOOGLE}\n");
        assert_eq!(
            redact(&input).found,
            vec![
                SecretKind::GoogleApiKey,
                SecretKind::AwsAccessKeyId,
                SecretKind::GoogleApiKey
            ]
        );
    }

    /// Guards against super-linear behaviour: a quadratic scan of these inputs would take hours,
    /// while a debug build does each in seconds. In release, 5 MB of secret-dense code takes
    /// about 0.17 s, a 6.9 MB real diff 0.06 s, and the worst input here (`token="` repeated,
    /// 4.9 MB) 0.65 s.
    #[test]
    fn large_and_adversarial_inputs_stay_linear() {
        let limit = Duration::from_secs(30);
        let line = format!(
            "    let token = client.fetch(&url).await?; // {AWS_ID} password = \"q8Zr3X9vLm2PwT7yKd4NcB6sHf1J\"\n"
        );
        let big = line.repeat(5 * 1024 * 1024 / line.len());
        let started = Instant::now();
        let out = redact(&big);
        assert!(started.elapsed() < limit, "{:?}", started.elapsed());
        assert_eq!(out.text.lines().count(), big.lines().count());

        for hostile in [
            "token=".repeat(400_000),
            "token=\"".repeat(400_000),
            "a".repeat(2_000_000) + "password",
            format!("{}\n", begin("RSA ")).repeat(100_000),
            format!("{}\n{KEY_LINE_1}\n", begin("RSA ")).repeat(50_000),
            "http://a:".repeat(300_000),
            "Bearer ".repeat(300_000),
        ] {
            let started = Instant::now();
            let out = redact(&hostile);
            assert!(started.elapsed() < limit, "{:?}", started.elapsed());
            assert_eq!(out.text.lines().count(), hostile.lines().count());
        }
    }
}
