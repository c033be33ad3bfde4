//! AWS Signature Version 4 as AWS services check it, for the stand-ins of services
//! that cannot run here: the signing key, and a request signed in the
//! `Authorization` header (the SDK's form) checked for a service with the test's
//! secret. Written from AWS's SigV4 documentation.
#![allow(dead_code, clippy::unwrap_used)]

use sha2::{Digest, Sha256};

use super::http::Request;

pub fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner_hash = Sha256::new().chain_update(&inner).chain_update(data).finalize();
    Sha256::new().chain_update(&outer).chain_update(inner_hash).finalize().to_vec()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3986 encoding of everything but the unreserved characters, as SigV4 asks.
pub fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The key that signs for `day/region/service`.
pub fn signing_key(secret: &str, day: &str, region: &str, service: &str) -> Vec<u8> {
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), day.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    key
}

/// Why a service refuses a request's signature: its error type and message, as
/// AWS's JSON protocols answer them (403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: &'static str,
    pub message: String,
}

fn refuse(kind: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { kind, message: message.into() }
}

/// Checks that `request` is signed for `service` with `access_key`/`secret`: the
/// credential scope names the service, every signed header is present, and the
/// signature over the canonical request (its path, query, signed headers and payload
/// hash) is the one the secret gives. A session token, when one is expected, must be
/// sent and signed.
pub fn verify(
    request: &Request,
    service: &str,
    access_key: &str,
    secret: &str,
    session_token: Option<&str>,
) -> Result<(), Refusal> {
    let Some(authorization) = request.header("authorization") else {
        return Err(refuse("MissingAuthenticationTokenException", "Missing Authentication Token"));
    };
    let fields = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| refuse("IncompleteSignatureException", format!("not a SigV4 Authorization: {authorization}")))?;
    let field = |name: &str| {
        fields.split(',').map(str::trim).find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    };
    let (Some(credential), Some(signed), Some(signature_sent)) =
        (field("Credential"), field("SignedHeaders"), field("Signature"))
    else {
        return Err(refuse("IncompleteSignatureException", format!("Authorization lacks a part: {authorization}")));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, day, region, scoped_service, "aws4_request"] = scope[..] else {
        return Err(refuse("IncompleteSignatureException", format!("credential {credential}")));
    };
    if key_id != access_key {
        return Err(refuse("UnrecognizedClientException", "The security token included in the request is invalid"));
    }
    if scoped_service != service {
        return Err(refuse(
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: '{service}', not '{scoped_service}'"),
        ));
    }
    let date = request.header("x-amz-date").unwrap_or_default();
    if !date.starts_with(day) {
        return Err(refuse("IncompleteSignatureException", format!("X-Amz-Date {date:?} is not of the day {day}")));
    }
    let names: Vec<&str> = signed.split(';').collect();
    for required in ["host", "x-amz-date"] {
        if !names.contains(&required) {
            return Err(refuse("InvalidSignatureException", format!("{required} is not signed")));
        }
    }
    if let Some(token) = session_token {
        if request.header("x-amz-security-token") != Some(token) || !names.contains(&"x-amz-security-token") {
            return Err(refuse("UnrecognizedClientException", "The security token included in the request is invalid"));
        }
    }
    let expected = signature(request, &names, day, region, service, secret, date)
        .map_err(|name| refuse("InvalidSignatureException", format!("the signed header {name} is not sent")))?;
    if expected != signature_sent {
        return Err(refuse(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    Ok(())
}

/// The signature of `request` over the headers `signed` (or the name of a signed
/// header it lacks).
fn signature(
    request: &Request,
    signed: &[&str],
    day: &str,
    region: &str,
    service: &str,
    secret: &str,
    date: &str,
) -> Result<String, String> {
    let mut headers = String::new();
    for name in signed {
        let value = request.header(name).ok_or_else(|| (*name).to_string())?;
        headers.push_str(&format!("{name}:{}\n", value.split_whitespace().collect::<Vec<_>>().join(" ")));
    }
    let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            (uri_encode(&decode(k)), uri_encode(&decode(v)))
        })
        .collect();
    pairs.sort();
    let query = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let payload = match request.header("x-amz-content-sha256") {
        Some(hash) => hash.to_string(),
        None => hex(&Sha256::digest(&request.body)),
    };
    let canonical = format!("{}\n{path}\n{query}\n{headers}\n{}\n{payload}", request.method, signed.join(";"));
    let scope = format!("{day}/{region}/{service}/aws4_request");
    let to_sign = format!("AWS4-HMAC-SHA256\n{date}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    Ok(hex(&hmac(&signing_key(secret, day, region, service), to_sign.as_bytes())))
}

/// Signs `request` for `service` as an SDK does (host, x-amz-date and the other
/// headers it has, in the Authorization header): for tests that send what the
/// product never would, to see a stand-in refuse it.
pub fn sign(request: &mut Request, service: &str, region: &str, access_key: &str, secret: &str, date: &str) {
    request.headers.retain(|(n, _)| n != "authorization" && n != "x-amz-date");
    request.headers.push(("x-amz-date".into(), date.into()));
    let mut names: Vec<String> = request.headers.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let day = &date[..8];
    let signature = signature(request, &names, day, region, service, secret, date).unwrap();
    let credential = format!("{access_key}/{day}/{region}/{service}/aws4_request");
    let authorization =
        format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={}, Signature={signature}", names.join(";"));
    request.headers.push(("authorization".into(), authorization));
}
