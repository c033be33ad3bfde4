use std::time::Duration;

use super::*;

async fn log() -> (tempfile::TempDir, EmbeddedLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log.sqlite")).unwrap();
    log.ensure_topic("t", 3, false).await.unwrap();
    (dir, log)
}

fn rec(key: &str, value: &str) -> OutRecord {
    OutRecord::new(key, value.as_bytes().to_vec())
}

#[tokio::test]
async fn records_of_one_key_stay_in_order_on_one_partition() {
    let (_dir, log) = log().await;
    let mut batch = Vec::new();
    for i in 0..30 {
        batch.push(rec(&format!("k{}", i % 5), &i.to_string()));
    }
    log.produce("t", batch).await.unwrap();
    let mut consumer = log.subscribe("g", "t").await.unwrap();
    let mut seen: Vec<LogRecord> = Vec::new();
    while seen.len() < 30 {
        seen.extend(consumer.poll(7, Duration::from_millis(200)).await.unwrap());
    }
    for k in 0..5 {
        let key = format!("k{k}");
        let of_key: Vec<_> = seen.iter().filter(|r| r.key == key).collect();
        assert!(of_key.iter().all(|r| r.partition == of_key[0].partition));
        let values: Vec<i32> = of_key.iter().map(|r| String::from_utf8_lossy(&r.value).parse().unwrap()).collect();
        let mut sorted = values.clone();
        sorted.sort_unstable();
        assert_eq!(values, sorted, "per-key order kept for {key}");
    }
}

#[tokio::test]
async fn a_group_resumes_from_its_committed_offsets_and_groups_are_independent() {
    let (dir, log) = log().await;
    log.produce("t", (0..10).map(|i| rec("same-key", &i.to_string())).collect()).await.unwrap();
    let mut a = log.subscribe("a", "t").await.unwrap();
    let first = a.poll(4, Duration::from_millis(100)).await.unwrap();
    assert_eq!(first.len(), 4);
    let p = first[0].partition;
    a.commit(&[(p, first[3].offset + 1)]).await.unwrap();
    drop(a);

    // Reopen the file, as a restarted process would.
    drop(log);
    let log = EmbeddedLog::open(&dir.path().join("log.sqlite")).unwrap();
    let mut a = log.subscribe("a", "t").await.unwrap();
    let rest = a.poll(100, Duration::from_millis(100)).await.unwrap();
    assert_eq!(rest.len(), 6, "resumes after the committed prefix");
    assert_eq!(rest[0].offset, 4);

    let mut b = log.subscribe("b", "t").await.unwrap();
    assert_eq!(b.poll(100, Duration::from_millis(100)).await.unwrap().len(), 10, "a new group starts at earliest");
}

#[tokio::test]
async fn reset_group_to_earliest_timestamp_and_end() {
    let (_dir, log) = log().await;
    log.produce("t", vec![rec("k", "old")]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cut = crate::now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    log.produce("t", vec![rec("k", "new")]).await.unwrap();

    log.reset_group("g", "t", Position::End).await.unwrap();
    let mut c = log.subscribe("g", "t").await.unwrap();
    assert!(c.poll(10, Duration::from_millis(50)).await.unwrap().is_empty());

    log.reset_group("g", "t", Position::Timestamp(cut)).await.unwrap();
    let mut c = log.subscribe("g", "t").await.unwrap();
    let got = c.poll(10, Duration::from_millis(50)).await.unwrap();
    assert_eq!(got.iter().map(|r| r.value.clone()).collect::<Vec<_>>(), vec![b"new".to_vec()]);

    drop(c);
    log.reset_group("g", "t", Position::Earliest).await.unwrap();
    let mut c = log.subscribe("g", "t").await.unwrap();
    assert_eq!(c.poll(10, Duration::from_millis(50)).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_resumed_group_starts_where_named_and_elsewhere_at_the_oldest_record() {
    let (_dir, log) = log().await;
    let batch: Vec<OutRecord> = (0..30).map(|i| rec(&format!("k{i}"), "v")).collect();
    log.produce("t", batch).await.unwrap();
    let marks = log.watermarks("t").await.unwrap();
    assert!(marks.iter().all(|m| m.high >= 3), "each partition holds a few records: {marks:?}");
    // Partition 0 named inside, partition 1 past its end (a topic made again),
    // partition 2 not named.
    let at = vec![(0, 2), (1, marks[1].high + 5)];
    let offsets = log.reset_group("g", "t", Position::Resume(at)).await.unwrap();
    let got: Vec<(i32, Option<i64>)> = offsets.iter().map(|o| (o.partition, o.committed)).collect();
    assert_eq!(got, vec![(0, Some(2)), (1, Some(0)), (2, Some(0))]);
    let mut c = log.subscribe("g", "t").await.unwrap();
    let mut read = 0;
    loop {
        let polled = c.poll(100, Duration::from_millis(50)).await.unwrap();
        if polled.is_empty() {
            break;
        }
        read += polled.len();
    }
    assert_eq!(read, 28, "all but partition 0's first two");
}

#[tokio::test]
async fn a_waiting_consumer_wakes_when_a_record_is_produced() {
    let (_dir, log) = log().await;
    let mut c = log.subscribe("g", "t").await.unwrap();
    let producer = log.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        producer.produce("t", vec![rec("k", "v")]).await.unwrap();
    });
    let got = c.poll(10, Duration::from_secs(10)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].key, "k");
}

#[tokio::test]
async fn headers_round_trip_and_unknown_topics_are_clear_errors() {
    let (_dir, log) = log().await;
    let mut r = rec("k", "v");
    r.headers = vec![("error.code".into(), "Corrupt \"image\"".into())];
    log.produce("t", vec![r]).await.unwrap();
    let mut c = log.subscribe("g", "t").await.unwrap();
    let got = c.poll(1, Duration::from_millis(50)).await.unwrap();
    assert_eq!(got[0].header("error.code"), Some("Corrupt \"image\""));

    let err = log.produce("nope", vec![rec("k", "v")]).await.unwrap_err();
    assert!(err.to_string().contains("topic nope does not exist"), "{err}");
}

#[tokio::test]
async fn a_full_disk_is_named_once_with_what_to_do() {
    let (_dir, log) = log().await;
    log.produce("t", vec![rec("a", "small")]).await.unwrap();
    {
        // SQLite reports SQLITE_FULL once the file may not grow, as on a full disk.
        let conn = log.inner.conn.lock().unwrap();
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        conn.pragma_update(None, "max_page_count", pages).unwrap();
    }
    let big: Vec<OutRecord> = (0..200).map(|i| rec(&format!("k{i}"), &"x".repeat(10_000))).collect();
    let message = log.produce("t", big).await.unwrap_err().to_string();
    assert!(message.contains("the disk is full: free space"), "{message}");
    assert_eq!(message.matches("full").count(), 1, "said once: {message}");
}
