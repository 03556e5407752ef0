//! Credentials for Elasticsearch: basic auth, API key or bearer token, given inline (usually as a
//! `${VAR}` from the environment) or as a file (how Kubernetes mounts a Secret); or AWS SigV4
//! signing (see [`aws`](super::aws)), which is applied to the built request instead.
//!
//! Files are read again for every request, so a rotated Secret takes effect without a restart,
//! and a wrong password fixed in the file heals the agent. Nothing here ever prints a secret:
//! [`Secret`]'s `Debug` is redacted and errors name the file, never its content.
//!
//! Also the `elasticsearch.auth` setting as written (`RawAuth`) and its validation.

use std::path::PathBuf;

use serde::Deserialize;

use super::aws::RawAwsAuth;
use crate::settings::{ConfigError, invalid};

/// A credential value. `Debug` prints `<redacted>`; the value is reachable only through
/// [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Inline(Secret),
    /// Read at each use; a trailing newline (as `echo` writes) is dropped.
    File(PathBuf),
}

impl SecretSource {
    pub fn read(&self) -> Result<Secret, String> {
        match self {
            SecretSource::Inline(s) => Ok(s.clone()),
            SecretSource::File(p) => match std::fs::read_to_string(p) {
                Ok(s) => Ok(Secret(s.trim_end_matches(['\n', '\r']).to_string())),
                Err(e) => Err(format!("cannot read secret file {}: {e}", p.display())),
            },
        }
    }
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Auth {
    #[default]
    None,
    Basic {
        username: String,
        password: SecretSource,
    },
    /// The base64 `id:api_key` value Elasticsearch returns as `encoded`.
    ApiKey(SecretSource),
    Bearer(SecretSource),
    /// SigV4 with credentials from the AWS chain: no header here; the request is signed by
    /// [`Signer`](super::aws::Signer) once built, just before it is sent.
    Aws(super::aws::AwsAuth),
}

impl Auth {
    /// One line for `sluice check`: the method, never a secret.
    pub fn summary(&self) -> String {
        match self {
            Auth::None => "none".into(),
            Auth::Basic { username, .. } => format!("basic auth as {username}"),
            Auth::ApiKey(_) => "API key".into(),
            Auth::Bearer(_) => "bearer token".into(),
            Auth::Aws(a) => format!(
                "AWS SigV4 for `{}` in {}, credentials from the AWS chain",
                a.service.signing_name(),
                a.region
                    .as_deref()
                    .unwrap_or("the region of the AWS environment")
            ),
        }
    }

    /// Adds the `Authorization` header (marked sensitive, so reqwest never logs it).
    pub fn apply(&self, req: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, String> {
        let (scheme, secret) = match self {
            Auth::None | Auth::Aws(_) => return Ok(req),
            Auth::Basic { username, password } => {
                let p = password.read()?;
                // `basic_auth` marks the header sensitive itself.
                return Ok(req.basic_auth(username, Some(p.expose())));
            }
            Auth::ApiKey(s) => ("ApiKey", s.read()?),
            Auth::Bearer(s) => ("Bearer", s.read()?),
        };
        let mut value =
            reqwest::header::HeaderValue::from_str(&format!("{scheme} {}", secret.expose()))
                // The error names neither the value nor a part of it.
                .map_err(|_| {
                    format!("the {scheme} credential contains characters not allowed in a header")
                })?;
        value.set_sensitive(true);
        Ok(req.header(reqwest::header::AUTHORIZATION, value))
    }
}

/// `elasticsearch.auth` as written: at most one method; each secret inline (e.g.
/// `${ES_PASSWORD}`) or as a file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    username: Option<String>,
    password: Option<Secret>,
    password_file: Option<PathBuf>,
    api_key: Option<Secret>,
    api_key_file: Option<PathBuf>,
    bearer_token: Option<Secret>,
    bearer_token_file: Option<PathBuf>,
    /// `Some(None)`: the key is there with no settings (`aws:` or `aws: {}`), which still means
    /// SigV4; a plain `Option` would read a bare `aws:` as "no auth".
    #[serde(default, deserialize_with = "present")]
    aws: Option<Option<RawAwsAuth>>,
}

fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn secret_source(
    key: &'static str,
    inline: Option<Secret>,
    file: Option<PathBuf>,
) -> Result<Option<SecretSource>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid(key, "give the value or the `_file`, not both")),
        (Some(s), None) if s.is_empty() => Err(invalid(key, "must not be empty")),
        (Some(s), None) => Ok(Some(SecretSource::Inline(s))),
        (None, Some(p)) if p.is_relative() => Err(invalid(
            key,
            format!("`{}` must be an absolute path", p.display()),
        )),
        (None, Some(p)) => Ok(Some(SecretSource::File(p))),
        (None, None) => Ok(None),
    }
}

impl RawAuth {
    pub(crate) fn validate(self) -> Result<Auth, ConfigError> {
        let a = self;
        let password = secret_source("elasticsearch.auth.password", a.password, a.password_file)?;
        let api_key = secret_source("elasticsearch.auth.api_key", a.api_key, a.api_key_file)?;
        let bearer = secret_source(
            "elasticsearch.auth.bearer_token",
            a.bearer_token,
            a.bearer_token_file,
        )?;
        let basic = match (a.username, password) {
            (Some(u), Some(p)) if !u.is_empty() => Some((u, p)),
            (Some(_), Some(_)) => {
                return Err(invalid("elasticsearch.auth.username", "must not be empty"));
            }
            (Some(_), None) => {
                return Err(invalid(
                    "elasticsearch.auth.password",
                    "basic auth needs a password (or password_file) with the username",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "elasticsearch.auth.username",
                    "basic auth needs a username with the password",
                ));
            }
            (None, None) => None,
        };
        let aws = a
            .aws
            .map(|raw| raw.unwrap_or_default().validate())
            .transpose()?;
        let methods = usize::from(basic.is_some())
            + usize::from(api_key.is_some())
            + usize::from(bearer.is_some())
            + usize::from(aws.is_some());
        if methods > 1 {
            return Err(invalid(
                "elasticsearch.auth",
                "choose one method: username+password, api_key, bearer_token or aws",
            ));
        }
        Ok(match (basic, api_key, bearer, aws) {
            (Some((username, password)), _, _, _) => Auth::Basic { username, password },
            (_, Some(k), _, _) => Auth::ApiKey(k),
            (_, _, Some(t), _) => Auth::Bearer(t),
            (_, _, _, Some(a)) => Auth::Aws(a),
            _ => Auth::None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let a = Auth::Basic {
            username: "elastic".into(),
            password: SecretSource::Inline(Secret::new("hunter2")),
        };
        let s = format!("{a:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("redacted"));
        let k = format!(
            "{:?}",
            Auth::ApiKey(SecretSource::Inline(Secret::new("c2VjcmV0")))
        );
        assert!(!k.contains("c2VjcmV0"), "{k}");
    }

    #[test]
    fn file_secret_is_read_at_each_use_without_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("password");
        std::fs::write(&p, "first\n").unwrap();
        let s = SecretSource::File(p.clone());
        assert_eq!(s.read().unwrap().expose(), "first");
        std::fs::write(&p, "second").unwrap();
        assert_eq!(s.read().unwrap().expose(), "second");
        std::fs::remove_file(&p).unwrap();
        let err = s.read().unwrap_err();
        assert!(err.contains("password") && !err.contains("second"), "{err}");
    }

    #[test]
    fn headers_are_sensitive_and_well_formed() {
        let client = reqwest::Client::new();
        let req = Auth::ApiKey(SecretSource::Inline(Secret::new("abc")))
            .apply(client.get("http://127.0.0.1:1/"))
            .unwrap()
            .build()
            .unwrap();
        let h = req.headers().get("authorization").unwrap();
        assert_eq!(h.to_str().unwrap(), "ApiKey abc");
        assert!(h.is_sensitive());
        let req = Auth::Basic {
            username: "u".into(),
            password: SecretSource::Inline(Secret::new("p")),
        }
        .apply(client.get("http://127.0.0.1:1/"))
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(req.headers()["authorization"], "Basic dTpw");
    }
}
