//! A stand-in for Amazon MSK's IAM sign-in in front of a real broker.
//!
//! MSK cannot run here, and tansu has no SASL/OAUTHBEARER, so this front speaks
//! the Kafka wire protocol's SASL exchange itself and relays everything else to
//! tansu (which must advertise the front's address, so that every connection comes
//! through it). It answers SaslHandshake (v0–v1) with OAUTHBEARER and
//! SaslAuthenticate (v0–v2) the way MSK does: the client's `auth=Bearer <token>`
//! (RFC 7628) must carry MSK's token, a base64url SigV4-presigned
//! `kafka-cluster:Connect` URL for this region, signed with the one access key it
//! knows, unexpired. The signature is checked here with a SigV4 written for the
//! test (HMAC-SHA256 from its definition), independent of the product's signer.
//! While enforcing, a connection that sends anything but ApiVersions before
//! signing in is refused and recorded.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::sigv4::{hex, hmac, signing_key, uri_encode};

const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;
const API_VERSIONS: i16 = 18;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

pub struct MskFront {
    pub port: u16,
    state: Arc<State>,
}

struct State {
    upstream: u16,
    region: String,
    access_key: String,
    secret: String,
    enforcing: AtomicBool,
    /// The session lifetime answered on sign-in: clients sign in again before it ends.
    session_ms: std::sync::atomic::AtomicI64,
    signed_in: AtomicUsize,
    /// Sign-ins on a connection that had already signed in.
    renewed: AtomicUsize,
    /// Why each refused connection was refused.
    refused: Mutex<Vec<String>>,
    /// The session token the credentials come with (ECS and IRSA credentials always
    /// have one): a token without it is refused, as MSK refuses it.
    session_token: Mutex<Option<String>>,
}

impl MskFront {
    /// Listens on `listener` and relays to the broker on 127.0.0.1:`upstream`.
    pub fn start(listener: TcpListener, upstream: u16, region: &str, access_key: &str, secret: &str) -> Self {
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            upstream,
            region: region.into(),
            access_key: access_key.into(),
            secret: secret.into(),
            enforcing: AtomicBool::new(false),
            session_ms: std::sync::atomic::AtomicI64::new(0),
            signed_in: AtomicUsize::new(0),
            renewed: AtomicUsize::new(0),
            refused: Mutex::new(Vec::new()),
            session_token: Mutex::new(None),
        });
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(client, &state));
            }
        });
        Self { port, state }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// From now on, connections must sign in before anything but ApiVersions.
    /// From now on a token must carry this session token (X-Amz-Security-Token).
    pub fn require_session_token(&self, token: &str) {
        *self.state.session_token.lock().unwrap() = Some(token.to_string());
    }

    pub fn enforce(&self) {
        self.state.enforcing.store(true, Ordering::SeqCst);
    }

    /// Sessions end after `ms` from now on (MSK ends them when the token expires):
    /// clients must sign in again on the same connection (KIP-368).
    pub fn expire_sessions_after(&self, ms: i64) {
        self.state.session_ms.store(ms, Ordering::SeqCst);
    }

    /// Sign-ins with a valid token (first ones and renewals).
    pub fn signed_in(&self) -> usize {
        self.state.signed_in.load(Ordering::SeqCst)
    }

    /// Sign-ins that renewed a session on an open connection.
    pub fn renewed(&self) -> usize {
        self.state.renewed.load(Ordering::SeqCst)
    }

    pub fn refused(&self) -> Vec<String> {
        self.state.refused.lock().unwrap().clone()
    }
}

fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut frame = vec![0u8; usize::try_from(i32::from_be_bytes(len)).ok()?];
    stream.read_exact(&mut frame).ok()?;
    Some(frame)
}

fn write_frame(stream: &Mutex<TcpStream>, body: &[u8]) {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    let _ = stream.lock().unwrap().write_all(&out);
}

fn serve(client: TcpStream, state: &State) {
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", state.upstream)) else { return };
    let to_client = Arc::new(Mutex::new(client.try_clone().unwrap()));
    {
        let to_client = Arc::clone(&to_client);
        let mut from_upstream = upstream.try_clone().unwrap();
        std::thread::spawn(move || {
            while let Some(frame) = read_frame(&mut from_upstream) {
                write_frame(&to_client, &frame);
            }
            let _ = to_client.lock().unwrap().shutdown(Shutdown::Both);
        });
    }
    let mut from_client = client;
    let mut signed_in = false;
    while let Some(frame) = read_frame(&mut from_client) {
        let mut r = Reader { buf: &frame, at: 0 };
        let api_key = r.i16();
        let version = r.i16();
        let correlation = r.i32();
        match api_key {
            SASL_HANDSHAKE => {
                let _client_id = r.string();
                let mechanism = r.string();
                let mut out = correlation.to_be_bytes().to_vec();
                let error: i16 = if mechanism == "OAUTHBEARER" { 0 } else { 33 };
                out.extend_from_slice(&error.to_be_bytes());
                out.extend_from_slice(&1i32.to_be_bytes());
                put_string(&mut out, "OAUTHBEARER");
                write_frame(&to_client, &out);
            }
            SASL_AUTHENTICATE => {
                let _client_id = r.string();
                let flexible = version >= 2;
                if flexible {
                    r.skip_tags();
                }
                let auth = if flexible { r.compact_bytes() } else { r.bytes() };
                let verdict =
                    bearer(&auth).ok_or_else(|| "no bearer token".to_string()).and_then(|t| verify(state, &t));
                let mut out = correlation.to_be_bytes().to_vec();
                if flexible {
                    out.push(0);
                }
                let message = verdict.as_ref().err().map(|e| format!("IAM sign-in failed: {e}"));
                let error = if verdict.is_ok() { 0 } else { SASL_AUTHENTICATION_FAILED };
                out.extend_from_slice(&error.to_be_bytes());
                match (&message, flexible) {
                    (None, true) => out.push(0),
                    (None, false) => out.extend_from_slice(&(-1i16).to_be_bytes()),
                    (Some(m), true) => {
                        out.push(u8::try_from(m.len() + 1).unwrap_or(127));
                        out.extend_from_slice(&m.as_bytes()[..m.len().min(126)]);
                    }
                    (Some(m), false) => put_string(&mut out, m),
                }
                if flexible {
                    out.push(1); // empty auth bytes
                } else {
                    out.extend_from_slice(&0i32.to_be_bytes());
                }
                if version >= 1 {
                    out.extend_from_slice(&state.session_ms.load(Ordering::SeqCst).to_be_bytes());
                }
                if flexible {
                    out.push(0);
                }
                write_frame(&to_client, &out);
                match verdict {
                    Ok(()) => {
                        if signed_in {
                            state.renewed.fetch_add(1, Ordering::SeqCst);
                        }
                        signed_in = true;
                        state.signed_in.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        state.refused.lock().unwrap().push(e);
                        break;
                    }
                }
            }
            API_VERSIONS => {
                if upstream.write_all(&[&(frame.len() as i32).to_be_bytes()[..], &frame].concat()).is_err() {
                    break;
                }
            }
            _ if !signed_in && state.enforcing.load(Ordering::SeqCst) => {
                state.refused.lock().unwrap().push(format!("api {api_key} before signing in"));
                break;
            }
            _ => {
                if upstream.write_all(&[&(frame.len() as i32).to_be_bytes()[..], &frame].concat()).is_err() {
                    break;
                }
            }
        }
    }
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = to_client.lock().unwrap().shutdown(Shutdown::Both);
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let end = (self.at + n).min(self.buf.len());
        let out = &self.buf[self.at..end];
        self.at = end;
        out
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take(2).try_into().unwrap_or_default())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().unwrap_or_default())
    }
    fn uvarint(&mut self) -> usize {
        let (mut out, mut shift) = (0usize, 0);
        loop {
            let Some(&b) = self.take(1).first() else { return out };
            out |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return out;
            }
            shift += 7;
        }
    }
    fn string(&mut self) -> String {
        let n = self.i16();
        if n < 0 {
            return String::new();
        }
        String::from_utf8_lossy(self.take(n as usize)).into_owned()
    }
    fn bytes(&mut self) -> Vec<u8> {
        let n = self.i32();
        self.take(usize::try_from(n).unwrap_or(0)).to_vec()
    }
    fn compact_bytes(&mut self) -> Vec<u8> {
        let n = self.uvarint().saturating_sub(1);
        self.take(n).to_vec()
    }
    fn skip_tags(&mut self) {
        for _ in 0..self.uvarint() {
            let _tag = self.uvarint();
            let n = self.uvarint();
            self.take(n);
        }
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The token in an OAUTHBEARER client message: `n,,\x01auth=Bearer <token>\x01\x01`.
fn bearer(message: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(message).ok()?;
    text.split('\x01').find_map(|kv| kv.strip_prefix("auth=Bearer ")).map(str::to_string)
}

/// Checks an MSK IAM token as MSK would: host, action, scope, freshness, signature.
fn verify(state: &State, token: &str) -> Result<(), String> {
    let raw =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|e| format!("not base64url: {e}"))?;
    let url = String::from_utf8(raw).map_err(|_| "not UTF-8".to_string())?;
    let host = format!("kafka.{}.amazonaws.com", state.region);
    let rest = url.strip_prefix(&format!("https://{host}/?")).ok_or_else(|| format!("not a URL of {host}: {url}"))?;
    let mut params: Vec<(String, String)> = rest
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    if get("Action") != "kafka-cluster:Connect" {
        return Err(format!("action {:?}", get("Action")));
    }
    if get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" || get("X-Amz-SignedHeaders") != "host" {
        return Err("not SigV4 signed over host".into());
    }
    let credential = get("X-Amz-Credential");
    let date = get("X-Amz-Date");
    let day = date.get(..8).unwrap_or_default().to_string();
    let scope = format!("{day}/{}/kafka-cluster/aws4_request", state.region);
    if credential != format!("{}/{scope}", state.access_key) {
        return Err(format!("credential {credential}"));
    }
    let expires: u64 = get("X-Amz-Expires").parse().map_err(|_| "no expiry".to_string())?;
    let signed_at = parse_amz_date(&date).ok_or_else(|| format!("date {date}"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    if expires != 900 || signed_at > now + 300 || signed_at + expires < now {
        return Err(format!("expired or not yet valid (signed {signed_at}, now {now}, expires {expires})"));
    }
    if let Some(token) = state.session_token.lock().unwrap().as_deref() {
        if get("X-Amz-Security-Token") != token {
            return Err("the session token is missing or another (X-Amz-Security-Token)".into());
        }
    }
    let signature = get("X-Amz-Signature");
    params.retain(|(k, _)| k != "X-Amz-Signature" && k != "User-Agent");
    let mut encoded: Vec<(String, String)> = params.iter().map(|(k, v)| (uri_encode(k), uri_encode(v))).collect();
    encoded.sort();
    let query = encoded.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let canonical = format!("GET\n/\n{query}\nhost:{host}\n\nhost\n{}", hex(&Sha256::digest(b"")));
    let to_sign = format!("AWS4-HMAC-SHA256\n{date}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let key = signing_key(&state.secret, &day, &state.region, "kafka-cluster");
    if hex(&hmac(&key, to_sign.as_bytes())) != signature {
        return Err("signature does not match".into());
    }
    Ok(())
}

/// `20231114T221320Z` as seconds since the epoch.
fn parse_amz_date(s: &str) -> Option<u64> {
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(9..11)?, n(11..13)?, n(13..15)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}
