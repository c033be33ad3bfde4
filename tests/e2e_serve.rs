//! `bucketlens serve`'s HTTP API against the real binary: paging, facets,
//! thumbnails from a folder and from S3, traversal attempts, the token, live events.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bucketlens_index::{Index, OpenSearchConfig, OpenSearchIndex, TantivyIndex};
use bucketlens_schemas::{ImageLabeled, Label, LabelKind, ModelInfo};
use common::opensearch::Osmem;
use common::s3::Moto;
use common::serve::{events, segment, Server};
use common::World;
use serde_json::Value;

const NAMES: [&str; 12] =
    ["Cat", "Dog", "Grass", "Sky", "Car", "Tree", "Person", "Boat", "Flower", "Bird", "Sofa", "Golden Retriever"];

/// 25,000 label records in two buckets, each with 1 to 3 labels.
fn corpus(n: usize) -> Vec<ImageLabeled> {
    (0..n)
        .map(|i| {
            let labels = (0..1 + i % 3)
                .map(|j| Label {
                    name: NAMES[(i * 7 + j * 5) % NAMES.len()].to_string(),
                    confidence: 50.0 + ((i * 13 + j) % 50) as f32,
                    parents: vec![],
                    categories: vec![],
                    aliases: vec![],
                    instances: vec![],
                })
                .collect();
            ImageLabeled {
                text: None,
                bucket: if i % 5 == 0 { "archive".into() } else { "photos".into() },
                key: format!("day-{:03}/img-{i:06}.jpg", i % 365),
                version_id: None,
                etag: Some(format!("e{i}")),
                size: Some(1000 + i as i64),
                last_modified: Some(1_700_000_000_000 + i as i64),
                sequencer: Some("01".into()),
                kind: LabelKind::Labeled,
                labels,
                image: None,
                model: ModelInfo { name: "m".into(), version: if i % 2 == 0 { "1".into() } else { "2".into() } },
                labeled_at: 5,
                error: None,
                labeler: None,
                metadata: None,
                hashes: None,
                storage_class: None,
                embedding: None,
            }
        })
        .collect()
}

/// Every hit of `query`, page by page; panics on a page that breaks the contract.
fn page_through(server: &Server, query: &str, limit: usize) -> (u64, Vec<(String, String)>) {
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut total = None;
    loop {
        let target = format!("/api/search?q={}&limit={limit}&facets=false&cursor={cursor}", segment(query));
        let page = server.json(&target);
        let hits = page["hits"].as_array().unwrap();
        assert!(hits.len() <= limit);
        total.get_or_insert(page["total"].as_u64().unwrap());
        seen.extend(hits.iter().map(|h| (h["bucket"].as_str().unwrap().into(), h["key"].as_str().unwrap().into())));
        match page["next"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return (total.unwrap(), seen),
        }
    }
}

fn check_paging_and_facets(world: &World, server: &Server) {
    for query in ["*", "cat OR dog"] {
        let (total, seen) = page_through(server, query, 500);
        assert_eq!(seen.len() as u64, total, "{query}: every hit");
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len(), "{query}: no hit twice");
        if query == "*" {
            assert_eq!(total, 25_000);
        }
    }
    for query in ["*", "cat", "\"golden retriever\" -sky"] {
        let api = server.json(&format!("/api/search?q={}&limit=1", segment(query)));
        let labels = world.json(&["labels", query, "--json", "--limit", "50"]);
        let from_cli: Vec<Value> = labels["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| serde_json::json!([l["name"], l["documents"]]))
            .collect();
        assert_eq!(api["facets"]["labels"].as_array().unwrap(), &from_cli, "{query}: facets = labels");
        assert_eq!(api["total"], labels["documents"], "{query}");
    }
    let facets = server.json("/api/search?q=*&limit=0")["facets"].clone();
    assert_eq!(facets["buckets"], serde_json::json!([["photos", 20_000], ["archive", 5_000]]));
    assert_eq!(facets["models"], serde_json::json!([["1", 12_500], ["2", 12_500]]));
    let narrowed = server.json("/api/search?q=*&limit=0&bucket=archive&model_version=2");
    assert_eq!(narrowed["total"], 2_500, "facet filters narrow the search");
}

#[test]
fn paging_through_25000_documents_returns_each_once_and_facets_equal_labels_on_tantivy() {
    let world = World::new(1);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let index = TantivyIndex::open_writer(&world.data.join("index"), 50_000_000).unwrap();
        for chunk in corpus(25_000).chunks(5_000) {
            index.write(chunk.to_vec()).await.unwrap();
        }
    });
    let server = Server::start(world.command(&["serve"]));
    check_paging_and_facets(&world, &server);
}

#[test]
fn paging_through_25000_documents_returns_each_once_and_facets_equal_labels_on_opensearch() {
    let osmem = Osmem::start();
    let mut world = World::new(1);
    world.env = Osmem::env(&osmem.url, "serve-paging");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = OpenSearchConfig { url: osmem.url.clone(), index: "serve-paging".into(), ..Default::default() };
        let index = OpenSearchIndex::open(&config).await.unwrap();
        for chunk in corpus(25_000).chunks(2_500) {
            let stats = index.write(chunk.to_vec()).await.unwrap();
            assert!(stats.rejected.is_empty());
        }
    });
    let server = Server::start(world.command(&["serve"]));
    check_paging_and_facets(&world, &server);
}

fn jpeg_size(bytes: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).unwrap();
    (image.width(), image.height())
}

/// A thumbnail of an image of `original` size, asked for at `size`: the long side is
/// `size` (or the original's, if smaller), the aspect kept to the pixel.
fn assert_fits(thumbnail: (u32, u32), original: (u32, u32), size: u32) {
    let long = size.min(original.0.max(original.1));
    let (w, h) = thumbnail;
    assert_eq!(w.max(h), long, "{thumbnail:?} of {original:?} at {size}");
    let expected = f64::from(original.0.min(original.1)) * f64::from(long) / f64::from(original.0.max(original.1));
    assert!((f64::from(w.min(h)) - expected).abs() <= 1.0, "{thumbnail:?} of {original:?} at {size}");
    assert_eq!(w >= h, original.0 >= original.1, "orientation kept");
}

/// A metric of `serve`; one it does not export fails the test (it is not a 0).
fn metric(server: &Server, name: &str) -> f64 {
    let response = server.get("/metrics");
    assert_eq!(response.status, 200, "{}", response.text());
    let text = response.text();
    let line = text.lines().find(|l| l.starts_with(name) && !l.starts_with('#'));
    let line = line.unwrap_or_else(|| panic!("serve has no metric {name}:\n{text}"));
    line.split_whitespace().last().unwrap().parse().unwrap()
}

#[test]
fn thumbnails_of_folder_objects_are_scaled_cached_and_follow_replacements() {
    let world = World::new(1);
    std::fs::write(world.photos.join("broken.jpg"), b"\xFF\xD8\xFF not really a JPEG").unwrap();
    std::fs::write(world.photos.join("empty.jpg"), b"").unwrap();
    world.index();
    let server = Server::start(world.command(&["serve"]));
    // A 0-byte object (indexed as failed) is served as what it is: nothing, to download.
    let empty = server.get("/api/images/photos/empty.jpg");
    assert_eq!(empty.status, 200, "{}", empty.text());
    assert_eq!((empty.body.len(), empty.header("content-type")), (0, Some("application/octet-stream")));
    let first = server.get("/api/thumbnails/photos/rocket.jpg?size=200");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("content-type"), Some("image/jpeg"));
    assert_fits(jpeg_size(&first.body), (640, 427), 200);
    let etag = first.header("etag").unwrap().to_string();
    assert_eq!(metric(&server, "bucketlens_serve_thumbnail_cache_misses_total"), 1.0);
    let again = server.get("/api/thumbnails/photos/rocket.jpg?size=200");
    assert_eq!(again.body, first.body);
    assert_eq!(metric(&server, "bucketlens_serve_thumbnail_cache_hits_total"), 1.0, "the second one is cached");
    let revalidated = server.raw_get("/api/thumbnails/photos/rocket.jpg?size=200", &[("If-None-Match", &etag)]);
    assert_eq!(revalidated.status, 304);
    assert_fits(jpeg_size(&server.get("/api/thumbnails/photos/chelsea.png").body), (451, 300), 320);
    let original = server.get("/api/images/photos/rocket.jpg");
    assert_eq!(original.status, 200);
    assert_eq!(original.header("content-type"), Some("image/jpeg"));
    assert_eq!(original.body, std::fs::read(world.photos.join("rocket.jpg")).unwrap());
    assert_eq!(
        original.header("content-disposition"),
        Some("inline; filename=\"rocket.jpg\"; filename*=UTF-8''rocket.jpg")
    );
    let tag = original.header("etag").unwrap();
    assert_eq!(server.raw_get("/api/images/photos/rocket.jpg", &[("If-None-Match", tag)]).status, 304);
    // Byte ranges (RFC 9110): a video-like seek or a resumed download reads a part.
    let bytes = std::fs::read(world.photos.join("rocket.jpg")).unwrap();
    let size = bytes.len();
    assert_eq!(original.header("accept-ranges"), Some("bytes"));
    for (asked, from, to) in [("bytes=0-9", 0, 9), ("bytes=100-", 100, size - 1), ("bytes=-5", size - 5, size - 1)] {
        let part = server.raw_get("/api/images/photos/rocket.jpg", &[("Range", asked)]);
        assert_eq!(part.status, 206, "{asked}: {}", part.text());
        assert_eq!(part.header("content-range"), Some(format!("bytes {from}-{to}/{size}").as_str()), "{asked}");
        assert_eq!(part.body, bytes[from..=to], "{asked}");
    }
    let beyond = server.raw_get("/api/images/photos/rocket.jpg", &[("Range", &format!("bytes={size}-"))]);
    assert_eq!(beyond.status, 416, "{}", beyond.text());
    assert_eq!(beyond.header("content-range"), Some(format!("bytes */{size}").as_str()));
    assert_eq!(beyond.json()["code"], "range_not_satisfiable");
    // Another version's If-Range, several ranges, or nonsense: the whole object.
    for headers in [
        vec![("Range", "bytes=0-9"), ("If-Range", "\"another\"")],
        vec![("Range", "bytes=0-9,20-29")],
        vec![("Range", "lines=1-2")],
    ] {
        let whole = server.raw_get("/api/images/photos/rocket.jpg", &headers);
        assert_eq!((whole.status, whole.body.len()), (200, size), "{headers:?}");
    }
    let same = server.raw_get("/api/images/photos/rocket.jpg", &[("Range", "bytes=0-9"), ("If-Range", tag)]);
    assert_eq!((same.status, same.body.len()), (206, 10), "If-Range of this version");
    // Replaced by another image: a new version, so a new thumbnail.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::copy(world.photos.join("coffee.png"), world.photos.join("rocket.jpg")).unwrap();
    world.index();
    let replaced = server.get("/api/thumbnails/photos/rocket.jpg?size=200");
    assert_ne!(replaced.header("etag").unwrap(), etag);
    assert_ne!(replaced.body, first.body, "the new content's thumbnail");
    assert_fits(jpeg_size(&replaced.body), (600, 400), 200);
    // A corrupt image (indexed as failed) gets an error naming it, and the server goes on.
    let broken = server.get("/api/thumbnails/photos/broken.jpg");
    assert_eq!(broken.status, 422, "{}", broken.text());
    assert_eq!(broken.json()["code"], "thumbnail_failed");
    assert!(broken.json()["error"].as_str().unwrap().contains("photos/broken.jpg"), "{}", broken.text());
    assert_eq!(server.get("/api/thumbnails/photos/chelsea.png?size=64").status, 200);
    let said: Vec<String> = server.stderr.try_iter().collect();
    assert!(!said.iter().any(|l| l.contains("panicked")), "a handler panicked:\n{}", said.join("\n"));
    for bad in ["size=0", "size=5000", "size=big"] {
        let response = server.get(&format!("/api/thumbnails/photos/rocket.jpg?{bad}"));
        assert_eq!(response.status, 400, "{bad}");
        assert!(response.json()["error"].as_str().unwrap().contains("size"), "{bad}");
    }
}

#[test]
fn thumbnails_of_s3_objects_come_through_the_same_source() {
    let moto = Moto::start();
    let world = World::new(1);
    moto.create_bucket("pics");
    moto.put("pics", "a/b c.jpg", &std::fs::read(world.photos.join("rocket.jpg")).unwrap());
    let mut index = world.command(&["index", "s3://pics/"]);
    let mut serve = world.command(&["serve"]);
    for (k, v) in moto.env() {
        index.env(k, &v);
        serve.env(k, v);
    }
    common::assert_success(&index.output().unwrap(), &["index", "s3://pics/"]);
    let server = Server::start(serve);
    let response = server.get(&format!("/api/thumbnails/pics/{}?size=100", segment("a/b c.jpg")));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_fits(jpeg_size(&response.body), (640, 427), 100);
    let original = server.get(&format!("/api/images/pics/{}", segment("a/b c.jpg")));
    assert_eq!(original.header("content-type"), Some("image/jpeg"));
    assert_eq!(original.body, std::fs::read(world.photos.join("rocket.jpg")).unwrap(), "streamed from S3 whole");
    let document = server.json(&format!("/api/objects/pics/{}", segment("a/b c.jpg")));
    assert_eq!(document["key"], "a/b c.jpg");
    // S3 down: a server error naming the object; searches still answer.
    drop(moto);
    let down = server.get(&format!("/api/thumbnails/pics/{}?size=90", segment("a/b c.jpg")));
    assert!(down.status >= 500, "{}: {}", down.status, down.text());
    assert!(down.json()["error"].as_str().unwrap().contains("pics/a/b c.jpg"), "{}", down.text());
    assert_eq!(server.json("/api/search?q=*")["total"], 1);
}

#[test]
fn no_request_reads_anything_the_index_does_not_hold() {
    let world = World::new(1);
    let outside = world.tmp.path().join("secret.jpg");
    std::fs::copy(world.photos.join("china.jpg"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, world.photos.join("link.jpg")).unwrap();
    world.index();
    // Indexed as a file, then replaced by a link to the outside.
    std::fs::remove_file(world.photos.join("flower.jpg")).unwrap();
    std::os::unix::fs::symlink(&outside, world.photos.join("flower.jpg")).unwrap();
    let server = Server::start(world.command(&["serve"]));
    let secret = std::fs::read(&outside).unwrap();
    for target in [
        "/api/images/photos/link.jpg",
        "/api/images/photos/../data/log.sqlite",
        "/api/images/photos/..%2F..%2Fsecret.jpg",
        "/api/images/photos/%2E%2E/secret.jpg",
        "/api/thumbnails/photos/..%2Fsecret.jpg",
        "/api/images/photos//etc/passwd",
        "/api/images/photos/%2Fetc%2Fpasswd",
        "/api/images/..%2F/secret.jpg",
        "/api/objects/photos/..%2Fsecret.jpg",
        "/api/images/photos/flower.jpg",
        "/assets/..%2F..%2FCargo.toml",
        "/../../etc/passwd",
    ] {
        let response = server.get(target);
        assert!(matches!(response.status, 400..=404), "{target}: {}", response.status);
        assert_ne!(response.body, secret, "{target} read the file outside");
        if target.starts_with("/api/") {
            assert!(response.json()["code"].is_string(), "{target}: {}", response.text());
        }
    }
    // The key a hostile page might use is data: looked up, not joined.
    assert_eq!(server.get("/api/objects/photos/nope.jpg").json()["code"], "not_found");
}

#[test]
fn errors_headers_and_limits() {
    let world = World::new(1);
    world.index();
    let server = Server::start(world.command(&["serve"]));
    let response = server.get("/api/search?q=cat%20AND");
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["code"], "bad_request");
    assert!(response.json()["error"].as_str().unwrap().contains("invalid query"), "{}", response.text());
    for (bad, names) in [
        ("limit=100000", "limit"),
        ("min_confidence=120", "min_confidence"),
        ("cursor=garbage", "cursor"),
        ("modified_after=yesterday", "modified_after"),
        ("state=gone", "state"),
        ("sort=size", "sort"),
    ] {
        let response = server.get(&format!("/api/search?{bad}"));
        assert_eq!(response.status, 400, "{bad}");
        assert!(response.json()["error"].as_str().unwrap().contains(names), "{bad}: {}", response.text());
    }
    let long = "a".repeat(5000);
    assert_eq!(server.get(&format!("/api/search?q={long}")).status, 400);
    let page = server.get("/");
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page.header("access-control-allow-origin").is_none());
    let cats = server.json("/api/search?q=cat");
    assert_eq!(cats["hits"][0]["key"], "chelsea.png");
    // Search forgives: operators in any case, plurals, true synonyms, a two-word
    // label unquoted; and a mistake is said where it is, in words.
    for forgiven in ["cats", "kitten", "domestic%20cat", "cat%20or%20rocket", "cats%20and%20not%20rocket"] {
        let found = server.json(&format!("/api/search?q={forgiven}"));
        let keys: Vec<&str> = found["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap()).collect();
        assert!(keys.contains(&"chelsea.png"), "{forgiven}: {keys:?}");
    }
    assert_eq!(server.json("/api/search?q=cat%20or%20rocket")["total"], 2);
    let error = server.get("/api/search?q=cat%20AND%20OR%20dog").json();
    assert!(
        error["error"].as_str().unwrap().ends_with("OR at character 9 cannot follow AND: a label should be there"),
        "{error}"
    );
    // `like`: the photos most like one, with the other parameters; each with its
    // similarity, the photo itself left out; one that is not there, or not a key, said.
    let like = server.json("/api/search?like=photos/chelsea.png&limit=5");
    let hits = like["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5, "{like}");
    assert!(hits.iter().all(|h| h["key"] != "chelsea.png" && h["similarity"].as_f64().is_some()), "{like}");
    let scores: Vec<f64> = hits.iter().map(|h| h["similarity"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "most similar first: {scores:?}");
    let narrowed = server.json("/api/search?like=photos/chelsea.png&q=coffee");
    assert_eq!(narrowed["hits"].as_array().unwrap().len(), 1, "{narrowed}");
    assert_eq!(narrowed["hits"][0]["key"], "coffee.png");
    assert_eq!(server.get("/api/search?like=photos/nothing.png").status, 404);
    let bad = server.get("/api/search?like=no-slash");
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("is not BUCKET/KEY"), "{}", bad.text());
    let near = server.json("/api/suggest?near=1&q=espreso");
    assert_eq!(near[0][0], "Espresso", "{near}");
    // JSON is compressed for a client that takes gzip; 405 has the error shape;
    // facets=0 leaves the counts out.
    let zipped = server.raw_get("/api/search?q=*&limit=60", &[("Accept-Encoding", "gzip")]);
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    let plain = server.get("/api/search?q=*&limit=60");
    assert!(zipped.body.len() * 3 < plain.body.len(), "{} bytes gzipped of {}", zipped.body.len(), plain.body.len());
    let posted = server.request("POST", "/api/search", &[], "");
    assert_eq!(posted.status, 405);
    assert_eq!(posted.json()["code"], "method_not_allowed");
    assert_eq!(server.json("/api/search?facets=0")["facets"]["labels"], serde_json::json!([]));
    assert_ne!(server.json("/api/search?facets=1")["facets"]["labels"], serde_json::json!([]));
    assert_eq!(server.get("/api/search?facets=maybe").status, 400);
    // The label counts stop at 50 unless more are asked for ("show all labels").
    assert_eq!(server.json("/api/search?facet_limit=3")["facets"]["labels"].as_array().unwrap().len(), 3);
    assert_eq!(server.get("/api/search?facet_limit=0").status, 400);
    let status = server.json("/api/status");
    assert_eq!(status["documents"], 12);
    assert!(server
        .get("/metrics")
        .text()
        .contains("bucketlens_serve_http_requests_total{route=\"/api/search\",status=\"400\"}"));
    let suggested = server.json("/api/suggest?q=ca");
    let names: Vec<&str> = suggested.as_array().unwrap().iter().map(|s| s[0].as_str().unwrap()).collect();
    assert!(names.contains(&"Cat") && names.iter().all(|n| n.to_lowercase().contains("ca")), "{names:?}");
    let starts: Vec<bool> = names.iter().map(|n| n.to_lowercase().starts_with("ca")).collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "names that start with it come first: {names:?}");
}

#[test]
fn off_loopback_serve_refuses_to_start_without_a_token_and_with_one_every_request_carries_it() {
    let world = World::new(1);
    let out = world.command(&["serve", "--listen", "0.0.0.0:0"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("serve.listen") && stderr.contains("serve.token"), "{stderr}");

    world.index();
    let mut command = world.command(&["serve"]);
    command.env("BUCKETLENS_SERVE__TOKEN", "a-long-enough-token");
    let server = Server::start(command);
    let refused = server.get("/api/search?q=cat");
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["code"], "unauthorized");
    assert_eq!(server.get("/").status, 303, "the page sends you to the login");
    let wrong = server.raw_get("/api/search?q=cat", &[("Authorization", "Bearer a-long-enough-tokem")]);
    assert_eq!(wrong.status, 401);
    let right = server.raw_get("/api/search?q=cat", &[("Authorization", "Bearer a-long-enough-token")]);
    assert_eq!(right.status, 200);
    let lower = server.raw_get("/api/search?q=cat", &[("Authorization", "bearer a-long-enough-token")]);
    assert_eq!(lower.status, 200, "the scheme is case-insensitive");
    let raw = server.raw_get("/api/search?q=cat", &[("Cookie", "bucketlens_session=a-long-enough-token")]);
    assert_eq!(raw.status, 401, "the token itself is not a session");

    // A page asked for without a session returns to it after sign-in.
    let asked = server.get("/?q=cat&photo=photos%2Fchelsea.png");
    assert_eq!(asked.header("location"), Some("/login?next=/%3Fq%3Dcat%26photo%3Dphotos%252Fchelsea.png"));
    let page = server.get("/login?next=/%3Fq%3Dcat").text();
    assert!(page.contains(r#"name="next" value="/?q=cat""#), "{page}");
    // Signing in sets a session cookie (not the token); behind a proxy that ended TLS
    // it is Secure.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let plain = server.request("POST", "/login", &form, "token=a-long-enough-token&next=%2F%3Fq%3Dcat");
    assert_eq!(plain.header("location"), Some("/?q=cat"));
    let set = plain.header("set-cookie").unwrap_or_default().to_string();
    assert!(set.starts_with("bucketlens_session=") && set.contains("HttpOnly") && !set.contains("Secure"), "{set}");
    assert!(set.contains("Max-Age=2592000") && !set.contains("a-long-enough-token"), "{set}");
    let session = set.split(';').next().unwrap().to_string();
    let cookie = server.raw_get("/api/thumbnails/photos/chelsea.png", &[("Cookie", &session)]);
    assert_eq!(cookie.status, 200);
    let away = server.request("POST", "/login", &form, "token=a-long-enough-token&next=%2F%2Fevil.example%2F");
    assert_eq!(away.header("location"), Some("/"), "never to another site");
    let proxied = [form[0], ("X-Forwarded-Proto", "https")];
    let tls = server.request("POST", "/login", &proxied, "token=a-long-enough-token");
    let set = tls.header("set-cookie").unwrap_or_default().to_string();
    assert!(set.contains("HttpOnly") && set.contains("; Secure"), "{set}");
    // Signing out forgets the cookie.
    let out = server.request("POST", "/logout", &[("Cookie", &session)], "");
    assert_eq!(out.header("location"), Some("/login"));
    assert!(out.header("set-cookie").unwrap_or_default().contains("bucketlens_session=; "), "{:?}", out.headers);
    assert_eq!(server.get("/api/session").status, 401, "no session, no answer");
    let session_info = server.raw_get("/api/session", &[("Cookie", &session)]);
    assert_eq!(session_info.json()["token_required"], true, "the page shows Sign out");

    // Wrong tokens are throttled: past 10 in a minute even the right one waits.
    let wrong: Vec<u16> =
        (0..10).map(|_| server.request("POST", "/login", &form, "token=not-the-token-at-all").status).collect();
    assert_eq!(wrong, [401; 10]);
    let throttled = server.request("POST", "/login", &form, "token=a-long-enough-token");
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after"), Some("60"));
}

#[test]
fn serve_listens_on_a_host_name_and_says_where() {
    let world = World::new(1);
    world.index();
    let server = Server::start_on(world.command(&["serve"]), "localhost:0");
    assert!(server.url.starts_with("http://127.0.0.1:") || server.url.starts_with("http://[::1]:"), "{}", server.url);
    assert_eq!(server.get("/api/search?q=cat").status, 200);
    let out = world.command(&["serve", "--listen", "no-such-host.invalid:7878"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--listen no-such-host.invalid:7878: not ADDRESS:PORT"), "{stderr}");
}

#[test]
fn live_events_announce_only_what_a_search_returns() {
    let world = World::new(1);
    let _watch = world.watch(12);
    let server = Server::start(world.command(&["serve"]));
    let changes = events(&server);
    std::fs::copy(world.photos.join("chelsea.png"), world.photos.join("new-cat.png")).unwrap();
    let event = changes.recv_timeout(Duration::from_secs(60)).expect("an event for the new file");
    assert_eq!(event["kind"], "labeled");
    assert_eq!(event["key"], "new-cat.png");
    // Announced only once searchable: the search right after finds it.
    let cats = server.json("/api/search?q=cat&limit=100");
    assert!(cats["hits"].as_array().unwrap().iter().any(|h| h["key"] == "new-cat.png"), "{cats}");
    std::fs::remove_file(world.photos.join("new-cat.png")).unwrap();
    let event = changes.recv_timeout(Duration::from_secs(60)).expect("an event for the deletion");
    assert_eq!(event["kind"], "removed");
    assert_eq!(event["document"], Value::Null);
    let cats = server.json("/api/search?q=cat&limit=100");
    assert!(!cats["hits"].as_array().unwrap().iter().any(|h| h["key"] == "new-cat.png"), "{cats}");
}
