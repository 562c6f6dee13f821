//! Reading `s3://BUCKET/PREFIX?endpoint=URL&region=NAME` and the `AWS_*` environment.
//!
//! The URL names only non-secret things. Credentials come from the environment alone,
//! so that they never end up in a command line, a process listing or a config file
//! printed for a bug report.
use std::fmt;
use url::{Host, Url};

/// The region used when neither the URL nor the environment names one.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Longest key prefix accepted in the URL.
pub const MAX_PREFIX_LEN: usize = 512;
/// Longest region name accepted.
pub const MAX_REGION_LEN: usize = 64;
/// Shortest and longest S3 bucket names.
pub const MIN_BUCKET_LEN: usize = 3;
pub const MAX_BUCKET_LEN: usize = 63;
/// Longest unknown URL parameter name repeated back in an error.
const MAX_ECHOED_PARAMETER_LEN: usize = 32;

/// The environment variables read.
pub const ENV_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const ENV_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const ENV_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
pub const ENV_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
pub const ENV_REGION: &str = "AWS_REGION";
pub const ENV_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";

const CREDENTIALS_ADVICE: &str = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
     AWS_SESSION_TOKEN for temporary credentials) in the server's environment";

/// What is wrong with an S3 blob URL or the environment around it. No message repeats a
/// credential or a whole URL, since either may hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "the blob URL is not a valid s3:// URL: write it as \
         s3://BUCKET/PREFIX?endpoint=https://HOST&region=NAME (endpoint, region and prefix \
         are optional)"
    )]
    Unparsable,
    #[error(
        "{0} holds credentials, which pawpost refuses to read from a URL: remove them, and \
         {CREDENTIALS_ADVICE}"
    )]
    CredentialsInUrl(&'static str),
    #[error(
        "{0:?} is not an S3 bucket name: use {MIN_BUCKET_LEN} to {MAX_BUCKET_LEN} \
         lower-case letters, digits, dots and hyphens, as in s3://pawpost-blobs/prefix"
    )]
    BadBucket(String),
    #[error(
        "{0:?} is not a usable key prefix: use at most {MAX_PREFIX_LEN} characters in \
         `/`-separated segments of letters, digits, `-`, `_` and `.` (but not `.` or `..`)"
    )]
    BadPrefix(String),
    #[error("the blob URL has an unknown parameter{0}: only endpoint= and region= are read there")]
    UnknownParameter(String),
    #[error("the blob URL gives {0}= twice: give it once")]
    RepeatedParameter(&'static str),
    #[error(
        "the S3 endpoint from {origin} is not usable ({reason}): write it as \
         https://HOST[:PORT]"
    )]
    BadEndpoint {
        origin: &'static str,
        reason: &'static str,
    },
    #[error(
        "the S3 endpoint from {origin} is plain http to {host}, which would carry the blobs \
         and signed requests unencrypted: use https://, or plain http only to a loopback \
         address such as 127.0.0.1"
    )]
    PlainHttp { origin: &'static str, host: String },
    #[error(
        "the region {0:?} is not a region name: use letters, digits and hyphens, as in \
         eu-west-1"
    )]
    BadRegion(String),
    #[error(
        "{0} is not set, and S3 credentials come only from the environment: {CREDENTIALS_ADVICE}"
    )]
    MissingCredential(&'static str),
}

/// The access key, kept out of `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials { .. }")
    }
}

impl Credentials {
    /// Every credential value, for scrubbing from error messages.
    pub(crate) fn values(&self) -> Vec<String> {
        [
            Some(&self.access_key_id),
            Some(&self.secret_access_key),
            self.session_token.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter(|v| !v.is_empty())
        .cloned()
        .collect()
    }
}

/// An S3 endpoint other than AWS's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port][/path]`, without a trailing slash.
    pub url: String,
    /// Plain http, which is only accepted to a loopback address.
    pub plain_http: bool,
}

/// Everything needed to reach one bucket prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// `""` for the whole bucket, otherwise segments joined by `/`, without a leading or
    /// trailing slash.
    pub prefix: String,
    /// `None` means AWS S3 itself.
    pub endpoint: Option<Endpoint>,
    pub region: String,
    pub credentials: Credentials,
}

impl S3Settings {
    /// Reads `url` (an `s3://` URL) and the variables that `env` returns.
    pub fn parse(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let parsed = Url::parse(url).map_err(|_| ConfigError::Unparsable)?;
        if parsed.scheme() != "s3" {
            return Err(ConfigError::Unparsable);
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(ConfigError::CredentialsInUrl("the blob URL"));
        }
        let mut endpoint_param = None;
        let mut region_param = None;
        for (name, value) in parsed.query_pairs() {
            let slot = match name.as_ref() {
                "endpoint" => &mut endpoint_param,
                "region" => &mut region_param,
                other if looks_like_credential(other) => {
                    return Err(ConfigError::CredentialsInUrl("the blob URL"));
                }
                other => return Err(ConfigError::UnknownParameter(echo_parameter(other))),
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(ConfigError::RepeatedParameter(if name == "endpoint" {
                    "endpoint"
                } else {
                    "region"
                }));
            }
        }
        if parsed.fragment().is_some() || parsed.port().is_some() {
            return Err(ConfigError::Unparsable);
        }
        let bucket = parsed.host_str().unwrap_or("").to_owned();
        if !bucket_name_ok(&bucket) {
            return Err(ConfigError::BadBucket(bucket));
        }
        let prefix = parsed.path().trim_matches('/').to_owned();
        if has_dot_segment(url) {
            // The URL parser resolves `.` and `..` away; a prefix names them literally.
            return Err(ConfigError::BadPrefix(prefix));
        }
        if !prefix_ok(&prefix) {
            return Err(ConfigError::BadPrefix(prefix));
        }

        let endpoint = match (endpoint_param, env(ENV_ENDPOINT_URL)) {
            (Some(url), _) => Some(parse_endpoint(&url, "the blob URL's endpoint= parameter")?),
            (None, Some(url)) => Some(parse_endpoint(&url, ENV_ENDPOINT_URL)?),
            (None, None) => None,
        };
        let region = region_param
            .or_else(|| env(ENV_REGION))
            .or_else(|| env(ENV_DEFAULT_REGION))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        if !region_ok(&region) {
            return Err(ConfigError::BadRegion(region));
        }

        let access_key_id =
            env(ENV_ACCESS_KEY_ID).ok_or(ConfigError::MissingCredential(ENV_ACCESS_KEY_ID))?;
        let secret_access_key = env(ENV_SECRET_ACCESS_KEY)
            .ok_or(ConfigError::MissingCredential(ENV_SECRET_ACCESS_KEY))?;
        Ok(Self {
            bucket,
            prefix,
            endpoint,
            region,
            credentials: Credentials {
                access_key_id,
                secret_access_key,
                session_token: env(ENV_SESSION_TOKEN),
            },
        })
    }

    /// Where the bucket is, for messages: the endpoint, or AWS S3 and the region.
    pub fn endpoint_label(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => endpoint.url.clone(),
            None => format!("AWS S3 ({})", self.region),
        }
    }
}

fn looks_like_credential(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "key",
        "secret",
        "token",
        "password",
        "credential",
        "signature",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// The parameter's name when it is short and plain; otherwise nothing, in case someone
/// pasted a secret where a name belongs.
fn echo_parameter(name: &str) -> String {
    let plain = name.len() <= MAX_ECHOED_PARAMETER_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'-');
    if plain {
        format!(" {name:?}")
    } else {
        String::new()
    }
}

fn bucket_name_ok(bucket: &str) -> bool {
    let bytes = bucket.as_bytes();
    (MIN_BUCKET_LEN..=MAX_BUCKET_LEN).contains(&bytes.len())
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !bucket.contains("..")
}

fn prefix_ok(prefix: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    prefix.len() <= MAX_PREFIX_LEN
        && prefix.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
}

/// Whether the path of `url`, as written, has a `.` or `..` segment (also percent-encoded).
fn has_dot_segment(url: &str) -> bool {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.split(['?', '#']).next().unwrap_or("");
    path.split('/').skip(1).any(|segment| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    })
}

fn region_ok(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= MAX_REGION_LEN
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn parse_endpoint(text: &str, origin: &'static str) -> Result<Endpoint, ConfigError> {
    let bad = |reason| ConfigError::BadEndpoint { origin, reason };
    let url = Url::parse(text).map_err(|_| bad("not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::CredentialsInUrl(origin));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it has a query or fragment"));
    }
    let host = url.host().ok_or_else(|| bad("it names no host"))?;
    let plain_http = match url.scheme() {
        "https" => false,
        "http" => true,
        _ => return Err(bad("the scheme must be https")),
    };
    if plain_http && !is_loopback(&host) {
        return Err(ConfigError::PlainHttp {
            origin,
            host: host.to_string(),
        });
    }
    Ok(Endpoint {
        url: url.as_str().trim_end_matches('/').to_owned(),
        plain_http,
    })
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_ID: &str = "AKIDEXAMPLEKEYID";
    const SECRET: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY";

    fn env_with(extra: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            extra
                .iter()
                .chain(&[(ENV_ACCESS_KEY_ID, KEY_ID), (ENV_SECRET_ACCESS_KEY, SECRET)])
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn parse(url: &str) -> Result<S3Settings, ConfigError> {
        S3Settings::parse(url, &env_with(&[]))
    }

    #[test]
    fn bucket_prefix_endpoint_and_region_come_from_the_url() {
        let s =
            parse("s3://pawpost-blobs/live/eu?endpoint=http://127.0.0.1:9000/&region=eu-west-1")
                .unwrap();
        assert_eq!(s.bucket, "pawpost-blobs");
        assert_eq!(s.prefix, "live/eu");
        assert_eq!(
            s.endpoint,
            Some(Endpoint {
                url: "http://127.0.0.1:9000".into(),
                plain_http: true
            })
        );
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.credentials.access_key_id, KEY_ID);
        assert_eq!(s.credentials.session_token, None);

        let s = parse("s3://pawpost-blobs").unwrap();
        assert_eq!((s.prefix.as_str(), s.endpoint), ("", None));
        assert_eq!(s.region, DEFAULT_REGION);
        assert_eq!(parse("s3://pawpost-blobs/").unwrap().prefix, "");
    }

    #[test]
    fn endpoint_and_region_fall_back_to_the_environment_and_the_url_wins() {
        let env = env_with(&[
            (ENV_ENDPOINT_URL, "https://minio.example.org:9000"),
            (ENV_DEFAULT_REGION, "ap-south-1"),
            (ENV_SESSION_TOKEN, "session"),
        ]);
        let s = S3Settings::parse("s3://bucket/p", &env).unwrap();
        assert_eq!(s.endpoint.unwrap().url, "https://minio.example.org:9000");
        assert_eq!(s.region, "ap-south-1");
        assert_eq!(s.credentials.session_token.as_deref(), Some("session"));

        let env = env_with(&[
            (ENV_ENDPOINT_URL, "https://minio.example.org:9000"),
            (ENV_REGION, "eu-central-1"),
            (ENV_DEFAULT_REGION, "ap-south-1"),
        ]);
        assert_eq!(
            S3Settings::parse("s3://bucket/p", &env).unwrap().region,
            "eu-central-1"
        );
        let s = S3Settings::parse(
            "s3://bucket/p?endpoint=http://localhost:9000&region=us-west-2",
            &env,
        )
        .unwrap();
        assert_eq!(s.endpoint.unwrap().url, "http://localhost:9000");
        assert_eq!(s.region, "us-west-2");
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_repeating_them() {
        for url in [
            format!("s3://{KEY_ID}:{SECRET}@bucket/prefix"),
            format!("s3://{KEY_ID}@bucket/prefix"),
            format!("s3://bucket/prefix?secret_access_key={SECRET}"),
            format!("s3://bucket/prefix?aws_access_key_id={KEY_ID}"),
            format!("s3://bucket/prefix?token={SECRET}"),
            format!("s3://bucket/prefix?endpoint=https://{KEY_ID}:{SECRET}@s3.example.org"),
        ] {
            let err = parse(&url).unwrap_err();
            assert!(
                matches!(err, ConfigError::CredentialsInUrl(_)),
                "{url}: {err:?}"
            );
            let message = err.to_string();
            assert!(message.contains("AWS_ACCESS_KEY_ID"), "{message}");
            assert!(message.contains("environment"), "{message}");
            assert!(
                !message.contains(SECRET) && !message.contains(KEY_ID),
                "{message}"
            );
        }
        let env = |name: &str| {
            (name == ENV_ENDPOINT_URL).then(|| format!("https://{KEY_ID}:{SECRET}@s3.example.org"))
        };
        let err = S3Settings::parse("s3://bucket", &env).unwrap_err();
        assert_eq!(err, ConfigError::CredentialsInUrl(ENV_ENDPOINT_URL));
    }

    #[test]
    fn plain_http_is_refused_except_to_loopback() {
        for endpoint in [
            "http://s3.example.org",
            "http://10.0.0.5:9000",
            "http://192.168.1.2",
            "http://[fe80::1]:9000",
        ] {
            let err = parse(&format!("s3://bucket/p?endpoint={endpoint}")).unwrap_err();
            assert!(
                matches!(err, ConfigError::PlainHttp { .. }),
                "{endpoint}: {err:?}"
            );
            let message = err.to_string();
            assert!(message.contains("https://"), "{message}");
            assert!(message.contains("loopback"), "{message}");
        }
        let env = |name: &str| match name {
            ENV_ENDPOINT_URL => Some("http://s3.example.org".to_owned()),
            _ => Some("x".to_owned()),
        };
        assert!(matches!(
            S3Settings::parse("s3://bucket", &env),
            Err(ConfigError::PlainHttp {
                origin: ENV_ENDPOINT_URL,
                ..
            })
        ));
        for endpoint in [
            "http://127.0.0.1:9000",
            "http://127.8.9.10",
            "http://[::1]:9000",
            "http://localhost:9000",
            "https://s3.example.org",
            "https://10.0.0.5:9000",
        ] {
            let s = parse(&format!("s3://bucket/p?endpoint={endpoint}")).unwrap();
            assert_eq!(
                s.endpoint.unwrap().plain_http,
                endpoint.starts_with("http:")
            );
        }
        for endpoint in [
            "ftp://s3.example.org",
            "https://s3.example.org/?x=1",
            "nonsense",
        ] {
            let err = parse(&format!("s3://bucket/p?endpoint={endpoint}")).unwrap_err();
            assert!(
                matches!(err, ConfigError::BadEndpoint { .. }),
                "{endpoint}: {err:?}"
            );
        }
    }

    #[test]
    fn missing_credentials_name_the_variable() {
        let err = S3Settings::parse("s3://bucket", &|_| None).unwrap_err();
        assert_eq!(err, ConfigError::MissingCredential(ENV_ACCESS_KEY_ID));
        let only_id = |name: &str| (name == ENV_ACCESS_KEY_ID).then(|| KEY_ID.to_owned());
        let err = S3Settings::parse("s3://bucket", &only_id).unwrap_err();
        assert_eq!(err, ConfigError::MissingCredential(ENV_SECRET_ACCESS_KEY));
        assert!(err.to_string().contains("environment"));
        let empty = |_: &str| Some(String::new());
        assert!(S3Settings::parse("s3://bucket", &empty).is_err());
    }

    #[test]
    fn bad_buckets_prefixes_and_parameters_are_refused() {
        for url in [
            "s3://",
            "s3://ab",
            "s3://Upper",
            "s3://a_b",
            "s3://-ab",
            "s3://a..b",
        ] {
            assert!(
                matches!(
                    parse(url),
                    Err(ConfigError::BadBucket(_) | ConfigError::Unparsable)
                ),
                "{url}"
            );
        }
        for url in [
            "s3://bucket/a//b",
            "s3://bucket/a/../b",
            "s3://bucket/a%20b",
            "s3://bucket/./b",
        ] {
            let err = parse(url).unwrap_err();
            assert!(
                matches!(err, ConfigError::BadPrefix(_) | ConfigError::Unparsable),
                "{url}: {err:?}"
            );
        }
        assert!(parse(&format!("s3://bucket/{}", "a".repeat(MAX_PREFIX_LEN + 1))).is_err());
        assert!(matches!(
            parse("https://bucket/p"),
            Err(ConfigError::Unparsable)
        ));
        assert!(matches!(
            parse("s3://bucket:9000/p"),
            Err(ConfigError::Unparsable)
        ));
        assert!(matches!(
            parse("s3://bucket/p?endpoint=https://a.example&endpoint=https://b.example"),
            Err(ConfigError::RepeatedParameter("endpoint"))
        ));
        assert_eq!(
            parse("s3://bucket/p?acl=public-read").unwrap_err().to_string(),
            "the blob URL has an unknown parameter \"acl\": only endpoint= and region= are read there"
        );
        assert!(matches!(
            parse("s3://bucket/p?region=eu%0d%0awest"),
            Err(ConfigError::BadRegion(_))
        ));
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let s = parse("s3://bucket/p").unwrap();
        let debug = format!("{s:?}");
        assert!(
            !debug.contains(SECRET) && !debug.contains(KEY_ID),
            "{debug}"
        );
    }
}
