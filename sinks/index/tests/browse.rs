//! Both backends sort, search file names and filter by having labels alike: the
//! embedded index, and OpenSearch (osmem-server, started here on 127.0.0.1;
//! `scripts/test` installs it and sets OSMEM_SERVER).
#![allow(clippy::unwrap_used)]

#[path = "support/browse.rs"]
mod browse;
#[path = "../../../tests/common/opensearch.rs"]
mod osmem_server;
#[path = "support/photos.rs"]
mod photos;
#[path = "support/records.rs"]
mod records;

use bucketlens_index::{OpenSearchConfig, OpenSearchIndex, TantivyIndex};

#[tokio::test]
async fn the_embedded_index_sorts_and_finds_file_names_and_unlabeled_photos() {
    let dir = tempfile::tempdir().unwrap();
    let index = TantivyIndex::open_writer(&dir.path().join("index"), 20_000_000).unwrap();
    browse::check(&index).await;
}

#[tokio::test]
async fn opensearch_sorts_and_finds_file_names_and_unlabeled_photos_as_the_embedded_index_does() {
    let server = osmem_server::Osmem::start();
    let config = OpenSearchConfig { url: server.url.clone(), index: "browse".into(), ..OpenSearchConfig::default() };
    let index = OpenSearchIndex::open(&config).await.unwrap();
    browse::check(&index).await;
}

#[tokio::test]
async fn the_embedded_index_finds_photos_by_date_taken_camera_lens_and_keyword() {
    let dir = tempfile::tempdir().unwrap();
    let index = TantivyIndex::open_writer(&dir.path().join("index"), 20_000_000).unwrap();
    photos::check(&index).await;
}

#[tokio::test]
async fn opensearch_finds_photos_by_date_taken_camera_lens_and_keyword_as_the_embedded_index_does() {
    let server = osmem_server::Osmem::start();
    let config =
        OpenSearchConfig { url: server.url.clone(), index: "photos-meta".into(), ..OpenSearchConfig::default() };
    let index = OpenSearchIndex::open(&config).await.unwrap();
    photos::check(&index).await;
}
