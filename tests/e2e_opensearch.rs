//! The real binary with the OpenSearch index (osmem-server on 127.0.0.1): the same
//! corpus gives the same documents and label counts as tantivy, a replay changes
//! nothing, an outage mid-run loses nothing, a refused document reaches the DLQ, and
//! requests signed for Amazon OpenSearch Service (`es`) and Serverless (`aoss`) pass
//! a gate that checks their SigV4 signatures; `_bulk` items OpenSearch answers with
//! 409, 429 or 503 are read again and written again, and an outage longer than the
//! sink's retries stops it with its offsets where they were.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::faults::{Faults, Seen};
use common::gate::SigV4Gate;
use common::opensearch::{Osmem, Proxy};
use common::World;
use serde_json::Value;

/// Every document as search shows it, by key (labeled and failed).
fn snapshot(world: &World) -> Vec<Value> {
    let mut docs = Vec::new();
    for state in
        [&["search", "*", "--json", "--limit", "1000"][..], &["search", "--failed", "--json", "--limit", "1000"]]
    {
        docs.extend(world.json(state)["hits"].as_array().unwrap().iter().cloned());
    }
    docs.sort_by_key(|d| d["key"].as_str().unwrap().to_string());
    docs
}

/// Without what differs between two copies of the corpus made a moment apart
/// (file times, and the etags made from them) or labelled a moment apart.
fn comparable(mut docs: Vec<Value>) -> Vec<Value> {
    for d in &mut docs {
        for field in ["labeled_at", "last_modified", "etag"] {
            d.as_object_mut().unwrap().remove(field);
        }
    }
    docs
}

#[test]
fn the_same_corpus_through_opensearch_and_tantivy_gives_the_same_documents_and_label_counts() {
    let server = Osmem::start();
    let tantivy = World::new(2);
    let mut opensearch = World::new(2);
    opensearch.env = Osmem::env(&server.url, "photos");
    std::fs::write(tantivy.photos.join("broken.jpg"), b"\xFF\xD8\xFF not a jpeg").unwrap();
    std::fs::write(opensearch.photos.join("broken.jpg"), b"\xFF\xD8\xFF not a jpeg").unwrap();
    for world in [&tantivy, &opensearch] {
        let out = world.index();
        assert!(out.contains("found 25 images") && out.contains("failed 1"), "{out}");
    }
    let (docs, expected) = (comparable(snapshot(&opensearch)), comparable(snapshot(&tantivy)));
    assert_eq!(docs.len(), 25);
    for (doc, want) in docs.iter().zip(&expected) {
        assert_eq!(doc, want);
    }
    assert_eq!(docs.len(), expected.len());
    let counts = |w: &World| w.json(&["labels", "--json", "--limit", "1000"]);
    assert_eq!(counts(&opensearch), counts(&tantivy));
    for query in ["cat", "animal AND NOT cat", "\"domestic cat\" OR coffee", "human", "outside AND NOT rocket"] {
        let args = ["search", query, "--json", "--min-confidence", "50"];
        assert_eq!(opensearch.json(&args)["total"], tantivy.json(&args)["total"], "{query}");
    }
    // An alias finds its label: "human" is Person's, which the astronaut and the
    // cameraman (two copies each) have from their faces.
    assert_eq!(opensearch.json(&["search", "human", "--json"])["total"], 4);
    let status = opensearch.status();
    assert_eq!((status["labeled"].as_u64(), status["failed"].as_u64()), (Some(24), Some(1)), "{status}");
    // Duplicates come from what either index holds: each photo's two copies.
    let duplicates = |w: &World| w.json(&["duplicates", "--json"]);
    let (found, expected) = (duplicates(&opensearch), duplicates(&tantivy));
    assert_eq!(found, expected);
    let groups = found["groups"].as_array().unwrap();
    assert_eq!(
        groups.iter().filter(|g| g["kind"] == "exact" && g["members"].as_array().unwrap().len() == 2).count(),
        12,
        "{found}"
    );
    // Similar photos, by embedding, the same on both, in the same order with the same
    // scores: the cat's other copy (the same bytes) first. (The OpenSearch-API server
    // the suite runs maps `knn_vector` but refuses the `knn` query, so this is the
    // search without the k-NN plugin; the knn request's shape is checked against the
    // plugin's documented API in sinks/index's unit tests.)
    let similar = |w: &World, args: &[&str]| {
        let mut all = vec!["similar", "photos/set-0/chelsea.png", "--json"];
        all.extend_from_slice(args);
        w.json(&all)
    };
    let found = similar(&opensearch, &[]);
    assert_eq!(found, similar(&tantivy, &[]));
    assert_eq!(found["hits"].as_array().unwrap().len(), 10, "{found}");
    assert_eq!(found["hits"][0]["key"], "set-1/chelsea.png", "{found}");
    assert_eq!(found["hits"][0]["exact"], true, "{found}");
    assert!(found["hits"][0]["similarity"].as_f64().unwrap() > 0.999, "{found}");
    assert!(found["hits"][1]["similarity"].as_f64().unwrap() < 0.5, "another picture: {found}");
    for args in [&["--copies"][..], &["--query", "coffee", "--limit", "3"], &["--prefix", "set-0/"]] {
        assert_eq!(similar(&opensearch, args), similar(&tantivy, args), "{args:?}");
    }
    let in_one_folder = similar(&opensearch, &["--prefix", "set-0/"]);
    assert!(in_one_folder["hits"].as_array().unwrap().iter().all(|h| h["key"].as_str().unwrap().starts_with("set-0/")));
}

#[test]
fn a_second_index_beside_the_first_gets_its_own_template_and_the_sink_names_its_target() {
    let server = Osmem::start();
    let mut first = World::new(1);
    first.env = Osmem::env(&server.url, "bucketlens-images");
    first.index();
    // A new index whose name starts with the first one's (a reindex target).
    let mut second = World::new(1);
    second.env = Osmem::env(&server.url, "bucketlens-images-v2");
    let out = second.command(&["index", second.photos.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(second.status()["documents"], 12);
    assert_eq!(first.status()["documents"], 12, "the first index is untouched");

    // The sink's start-up line names the cluster and the index it writes.
    let mut sink = second.command(&["sink"]).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = std::io::BufReader::new(sink.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("index sink group") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "the sink said nothing");
    }
    let _ = sink.kill();
    let _ = sink.wait();
    let target = format!("{}/bucketlens-images-v2", server.url.trim_end_matches('/'));
    assert!(line.contains(&target), "the start-up line does not name {target}: {line}");
}

#[test]
fn replaying_the_label_log_into_opensearch_twice_changes_nothing() {
    let server = Osmem::start();
    let mut world = World::new(1);
    world.env = Osmem::env(&server.url, "photos");
    world.index();
    let before = snapshot(&world);
    assert_eq!(before.len(), 12);
    for _ in 0..2 {
        let out = world.run(&["replay", "--group", "bucketlens-index", "--from", "earliest"]);
        assert!(out.starts_with("indexed 12 label records (12 applied, 0 older than the index held)"), "{out}");
        assert_eq!(snapshot(&world), before, "a replay changed the index");
    }
    assert_eq!(world.status()["dlq"]["images.labeled.dlq.v1"], 0);
}

#[test]
fn an_opensearch_outage_mid_run_is_retried_and_loses_nothing() {
    let server = Osmem::start();
    let proxy = Proxy::start(&server.url);
    let mut world = World::new(4);
    world.env = Osmem::env(&proxy.url(), "photos");
    // Searches go to the server itself, past the proxy.
    let mut direct = World::new(0);
    direct.env = Osmem::env(&server.url, "photos");
    let mut index = world.command(&["index", world.photos.to_str().unwrap()]);
    let child = index.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Cut the connection once the first documents are in, for three seconds.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "no document reached OpenSearch");
        let out = direct.command(&["search", "*", "--json", "--limit", "0"]).output().unwrap();
        let total = serde_json::from_slice::<Value>(&out.stdout).ok().and_then(|v| v["total"].as_u64());
        if total.is_some_and(|t| t > 0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.cut();
    std::thread::sleep(Duration::from_secs(3));
    proxy.restore();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("retrying"), "the outage did not hit a write, the test proves nothing:\n{stderr}");
    assert!(stdout.contains("indexed 48"), "{stdout}");
    let keys: std::collections::BTreeSet<String> =
        snapshot(&direct).iter().map(|d| d["key"].as_str().unwrap().to_string()).collect();
    assert_eq!(keys.len(), 48, "documents lost in the outage");
}

#[test]
fn a_document_opensearch_refuses_goes_to_the_dlq_and_the_rest_is_indexed() {
    let server = Osmem::start();
    // Made by hand with `key` as a number: every bucketlens document is refused.
    let status = server.request("PUT", "/handmade", r#"{"mappings":{"properties":{"key":{"type":"long"}}}}"#);
    assert_eq!(status, 200);
    let mut world = World::new(1);
    world.env = Osmem::env(&server.url, "handmade");
    let out = world.command(&["index", world.photos.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mapper_parsing_exception"), "{stderr}");
    let status = world.status();
    assert_eq!(status["dlq"]["images.labeled.dlq.v1"], 12, "{status}");
    assert_eq!(status["dlq"]["objects.changed.dlq.v1"], 0, "the labeler failed nothing: {status}");
    assert_eq!(status["groups"][1]["lag"], 0, "the sink is stuck: {status}");
}

#[test]
fn a_misspelt_opensearch_index_is_an_error_naming_it_not_an_empty_result() {
    let server = Osmem::start();
    let mut world = World::new(1);
    world.env = Osmem::env(&server.url, "photoz");
    let out = world.command(&["search", "cat"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not exist") && stderr.contains("/photoz"), "{stderr}");
    let status = world.status();
    assert_eq!(status["index"]["state"], "missing", "{status}");
    world.index();
    assert_eq!(world.status()["index"]["state"], "present");
    assert!(world.json(&["search", "cat", "--json"])["total"].as_u64().unwrap() >= 1);
}

#[test]
fn reindex_replaces_a_plain_index_only_when_asked_and_the_embedded_index_is_rebuilt_in_place() {
    let server = Osmem::start();
    // An index made by a bucketlens from before aliases: a plain index named as
    // configured, created through a template of bucketlens' shape.
    let mut model = World::new(0);
    model.env = Osmem::env(&server.url, "model");
    model.run(&["index", model.photos.to_str().unwrap()]);
    let (status, templates) = server.call("GET", "/_index_template/model-v1", "");
    assert_eq!(status, 200, "{templates}");
    let mut template = templates["index_templates"][0]["index_template"].clone();
    template["index_patterns"] = serde_json::json!(["legacy"]);
    assert_eq!(server.request("PUT", "/_index_template/legacy", &template.to_string()), 200);
    assert_eq!(server.request("PUT", "/legacy", "{}"), 200);
    let mut world = World::new(1);
    world.env = Osmem::env(&server.url, "legacy");
    world.index();
    assert_eq!(world.status()["documents"], 12);

    let refused = world.command(&["reindex"]).output().unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("is an index, not an alias") && said.contains("--delete-old"),
        "{said}"
    );
    assert_eq!(server.call("GET", "/_alias/legacy", "").0, 404, "nothing moved");
    assert_eq!(server.request("HEAD", "/legacy-v2", ""), 404, "nothing created");

    let out = world.run(&["reindex", "--delete-old"]);
    assert!(out.contains("reindexed 12 records into legacy-v2") && out.contains("deleted in the switch"), "{out}");
    let (_, aliases) = server.call("GET", "/_alias/legacy", "");
    assert!(aliases.get("legacy-v2").is_some(), "{aliases}");
    assert_eq!(world.status()["documents"], 12, "search reads the new index through the alias");
    assert_eq!(world.json(&["search", "cat", "--json"])["total"], 1);

    // The embedded index has no aliases: reindex says what to do instead.
    let tantivy = World::new(0);
    let out = tantivy.command(&["reindex"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("rebuilt in place") && said.contains("replay --group"), "{said}");
}

/// `aws-service = "es"` and `"aoss"`, the path deploy/aws and the k8s overlay use: the
/// sink and search sign every request for the service (a gate in front of the server
/// checks each signature as AWS does), and a wrong secret fails naming the refusal.
#[test]
fn requests_signed_for_opensearch_service_and_serverless_pass_a_sigv4_gate_and_a_wrong_secret_does_not() {
    for service in ["es", "aoss"] {
        let server = Osmem::start();
        let gate = SigV4Gate::start(&server.url, service);
        let mut world = World::new(1);
        world.env = Osmem::env(&gate.url(), "photos");
        world.env.extend(
            [
                ("BUCKETLENS_INDEX__OPENSEARCH__AWS_SERVICE", service),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_REGION", "eu-west-1"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let out = world.index();
        assert!(out.contains("labeled 12") && out.contains("indexed 12"), "{service}: {out}");
        assert_eq!(world.json(&["search", "cat", "--json"])["hits"][0]["key"], "chelsea.png", "{service}");
        assert!(gate.refused().is_empty(), "{service}: refused {:?}", gate.refused());
        assert!(gate.passed() >= 3, "{service}: {} signed requests", gate.passed());

        world.env.retain(|(k, _)| k != "AWS_SECRET_ACCESS_KEY");
        world.env.push(("AWS_SECRET_ACCESS_KEY".into(), "wrong".into()));
        let out = world.command(&["search", "cat"]).output().unwrap();
        assert!(!out.status.success(), "{service}: a wrong secret searched");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("403"), "{service}: {err}");
        assert!(!gate.refused().is_empty());
    }
}

#[test]
fn bulk_items_opensearch_answers_409_429_or_503_are_read_again_written_again_and_lose_nothing() {
    let server = Osmem::start();
    let mut clean = World::new(1);
    clean.env = Osmem::env(&server.url, "clean");
    clean.index();
    let expected = comparable(snapshot(&clean));
    assert_eq!(expected.len(), 12);

    let faults = Faults::start(&server.url);
    // The first three items of the first _bulk: a conflict, throttled, a shard down.
    faults.script(&[409, 429, 503]);
    let mut world = World::new(1);
    world.env = Osmem::env(&faults.url(), "photos");
    let out = world.command(&["index", world.photos.to_str().unwrap()]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("indexed 12"), "{stdout}");
    // The items may fall into one batch or several: the counts add up either way.
    let counted = |field: &str| -> u64 {
        let prefix = format!("{field}=");
        let lines = stderr.lines().filter(|l| l.contains("OpenSearch did not write some documents"));
        lines
            .flat_map(|l| {
                l.split_whitespace()
                    .filter_map(|w| w.strip_prefix(prefix.as_str())?.parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    };
    assert_eq!((counted("conflicts"), counted("throttled")), (1, 2), "what the sink wrote again:\n{stderr}");
    assert_eq!(comparable(snapshot(&world)), expected, "a faulted document is missing or differs");

    let seen = faults.seen();
    let faulted: Vec<(usize, u16, String)> = seen
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Seen::Faulted(status, id) => Some((i, *status, id.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(faulted.iter().map(|(_, s, _)| *s).collect::<Vec<_>>(), [409, 429, 503], "{seen:?}");
    for (at, status, id) in &faulted {
        // Read again before it is written again: a conflict is decided again on what
        // the other writer left.
        let read = seen[at + 1..].iter().position(|s| *s == Seen::Read(id.clone()));
        let written = seen[at + 1..].iter().position(|s| *s == Seen::Written(id.clone()));
        assert!(read.is_some() && written.is_some() && read < written, "{status} {id}: {seen:?}");
    }
    assert_eq!(world.status()["dlq"]["images.labeled.dlq.v1"], 0, "a retried document went to the DLQ");
}

#[test]
fn an_opensearch_outage_longer_than_the_sinks_retries_stops_it_with_its_offsets_unchanged() {
    let server = Osmem::start();
    let faults = Faults::start(&server.url);
    let mut world = World::new(1);
    world.env = Osmem::env(&faults.url(), "photos");
    // The index is created, then every _bulk answers 503 for good.
    faults.outage(true);
    let mut index = world.command(&["index", world.photos.to_str().unwrap()]);
    let mut child = index.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // The sink's retries take about 25 s; one that never gives up is a failure too.
    let deadline = Instant::now() + Duration::from_secs(180);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the sink never gave up on an OpenSearch that answers 503 to every write");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "the sink gave up and the command succeeded:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("answered 503: unavailable_shards_exception"),
        "the error does not say what OpenSearch answered:\n{stderr}"
    );
    let refused = faults.seen().iter().filter(|s| **s == Seen::Refused).count();
    assert_eq!(refused, 8, "every attempt of the sink's retry budget, and no more: {:?}", faults.seen());
    let status = world.status();
    let sink = status["groups"].as_array().unwrap().iter().find(|g| g["group"] == "bucketlens-index").unwrap().clone();
    assert_eq!(sink["lag"], 12, "the sink committed records it never wrote: {status}");
    assert_eq!(status["dlq"]["images.labeled.dlq.v1"], 0, "an outage is not a refusal: {status}");

    // Once OpenSearch is back, the same command indexes all of it: nothing was lost.
    faults.outage(false);
    let out = world.command(&["index", world.photos.to_str().unwrap()]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(snapshot(&world).len(), 12, "{stdout}");
}
