//! Browsing cases both backends must answer alike (included by path in the tantivy
//! unit tests and the OpenSearch integration tests): the orders, the file-name
//! search, `has:labels`, and a minimum confidence with no label asked for.
//! Expectations are written from the corpus below, not from either backend's output.

use bucketlens_schemas::{ImageLabeled, LabelKind};

use super::records::{label, record};
use bucketlens_index::{Expr, Index, SearchRequest, Sort};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_700_000_000_000;

fn dated(key: &str, modified: Option<i64>, labels: Vec<bucketlens_schemas::Label>) -> ImageLabeled {
    let mut r = record(key, 1, LabelKind::Labeled, labels);
    r.last_modified = modified;
    r
}

/// Six photos: keys, dates and labels chosen so every order differs.
pub fn corpus() -> Vec<ImageLabeled> {
    vec![
        dated("2019/Beach-IMG_0001.JPG", Some(T0 + 3 * DAY), vec![label("Cat", 40.0)]),
        dated("2019/img_0002.jpg", Some(T0 + DAY), vec![label("Cat", 95.0), label("Sofa", 70.0)]),
        dated("scans/receipt (1).png", Some(T0 + 5 * DAY), vec![]),
        dated("img_0003/notes.txt.png", Some(T0 + 2 * DAY), vec![label("Dog", 80.0)]),
        dated("a.jpg", None, vec![]),
        dated("z/zebra.webp", Some(T0 + 4 * DAY), vec![label("Zebra", 55.0)]),
    ]
}

async fn pages(index: &dyn Index, query: &str, min: f32, sort: Sort, per_page: usize) -> Vec<String> {
    let mut keys = Vec::new();
    let mut request = SearchRequest::new(Expr::parse(query).unwrap());
    request.min_confidence = min;
    request.sort = sort;
    request.limit = per_page;
    loop {
        let response = index.search(request.clone()).await.unwrap();
        keys.extend(response.hits.iter().map(|h| h.key.clone()));
        match response.next {
            Some(next) => request.after = Some(next),
            None => return keys,
        }
    }
}

pub async fn check(index: &dyn Index) {
    index.write(corpus()).await.unwrap();
    let by_name = ["2019/Beach-IMG_0001.JPG", "2019/img_0002.jpg", "a.jpg", "img_0003/notes.txt.png"]
        .into_iter()
        .chain(["scans/receipt (1).png", "z/zebra.webp"])
        .collect::<Vec<_>>();
    let newest = [
        "scans/receipt (1).png",
        "z/zebra.webp",
        "2019/Beach-IMG_0001.JPG",
        "img_0003/notes.txt.png",
        "2019/img_0002.jpg",
        "a.jpg", // no date: last
    ];
    for per_page in [1, 2, 100] {
        assert_eq!(pages(index, "*", 0.0, Sort::Name, per_page).await, by_name, "by name, {per_page} a page");
        assert_eq!(pages(index, "*", 0.0, Sort::Newest, per_page).await, newest, "newest, {per_page} a page");
        let oldest: Vec<&str> = ["a.jpg"].into_iter().chain(newest[..5].iter().rev().copied()).collect();
        assert_eq!(pages(index, "*", 0.0, Sort::Oldest, per_page).await, oldest, "oldest, {per_page} a page");
        assert_eq!(
            pages(index, "cat", 0.0, Sort::Relevance, per_page).await,
            ["2019/img_0002.jpg", "2019/Beach-IMG_0001.JPG"],
            "relevance: the surer cat first"
        );
        assert_eq!(
            pages(index, "cat", 0.0, Sort::Name, per_page).await,
            ["2019/Beach-IMG_0001.JPG", "2019/img_0002.jpg"],
            "a label query sorted by name"
        );
    }
    let find = |query: &'static str, min: f32| async move { pages(index, query, min, Sort::Name, 100).await };
    // The file name, in any case; the folder's name does not count.
    assert_eq!(find("name:img_000", 0.0).await, ["2019/Beach-IMG_0001.JPG", "2019/img_0002.jpg"]);
    assert_eq!(find("name:\"receipt (1)\"", 0.0).await, ["scans/receipt (1).png"], "parentheses are plain text");
    assert_eq!(find("name:.txt", 0.0).await, ["img_0003/notes.txt.png"], "a dot is a dot");
    assert_eq!(find("name:2019", 0.0).await, Vec::<String>::new(), "a folder is not a file name");
    assert_eq!(find("name:img cat", 0.0).await, ["2019/Beach-IMG_0001.JPG", "2019/img_0002.jpg"]);
    assert_eq!(find("name:.*", 0.0).await, Vec::<String>::new(), "not a pattern");
    // Having labels, and the slider with no label asked for.
    let labeled = ["2019/Beach-IMG_0001.JPG", "2019/img_0002.jpg", "img_0003/notes.txt.png", "z/zebra.webp"];
    assert_eq!(find("has:labels", 0.0).await, labeled);
    assert_eq!(find("-has:labels", 0.0).await, ["a.jpg", "scans/receipt (1).png"]);
    assert_eq!(find("*", 0.0).await, by_name, "at 0, every photo");
    assert_eq!(find("*", 60.0).await, ["2019/img_0002.jpg", "img_0003/notes.txt.png"], "some label at 60 or more");
    assert_eq!(find("*", 95.0).await, ["2019/img_0002.jpg"], "at exactly the minimum");
    assert_eq!(find("*", 95.1).await, Vec::<String>::new());
    assert_eq!(
        find("-has:labels", 60.0).await,
        ["2019/Beach-IMG_0001.JPG", "a.jpg", "scans/receipt (1).png", "z/zebra.webp"],
        "no label at 60 or more"
    );
    assert_eq!(find("name:img", 60.0).await, ["2019/img_0002.jpg"], "a file name at the slider");
}
