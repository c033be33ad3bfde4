//! Searching by what photos say about themselves, which both backends must answer
//! alike: `year:`, `taken:`, `camera:`, `lens:`, `keyword:`, `country:`, `city:`,
//! `place:`, combined with labels.
//! Expectations are written from the corpus below, not from either backend's output.

use bucketlens_schemas::{Camera, Gps, ImageLabeled, LabelKind, PhotoMetadata, Place};

use super::records::{label, record};
use bucketlens_index::{Expr, Index, SearchRequest, Sort};

fn photo(
    key: &str,
    taken: Option<&str>,
    camera: Option<(&str, &str)>,
    lens: Option<&str>,
    keywords: &[&str],
) -> ImageLabeled {
    let mut r = record(key, 1, LabelKind::Labeled, vec![label(if key.contains("cat") { "Cat" } else { "Dog" }, 90.0)]);
    r.metadata = Some(PhotoMetadata {
        taken_at: taken.map(str::to_string),
        camera: camera.map(|(make, model)| Camera { make: Some(make.into()), model: Some(model.into()) }),
        lens: lens.map(str::to_string),
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        gps: Some(Gps { lat: 35.0, lon: 135.75, alt: None }),
        place: place_of(key),
        ..PhotoMetadata::default()
    });
    r
}

fn place_of(key: &str) -> Option<Place> {
    let (city, region, country, code) = match key {
        "kyoto-cat.jpg" => ("Kyoto", "Kyoto", "Japan", "JP"),
        "tokyo-dog.jpg" => ("Tokyo", "Tokyo", "Japan", "JP"),
        "home-cat.jpg" => ("São Paulo", "São Paulo", "Brazil", "BR"),
        _ => return None,
    };
    Some(Place { city: city.into(), region: Some(region.into()), country: country.into(), country_code: code.into() })
}

pub fn corpus() -> Vec<ImageLabeled> {
    vec![
        // Just before midnight on New Year's Eve in Tokyo: 2019 by its clock, 2019 in UTC too.
        photo(
            "kyoto-cat.jpg",
            Some("2019-12-31T23:30:00+09:00"),
            Some(("FUJIFILM", "X-T30")),
            Some("XF35mmF2 R WR"),
            &["Travel", "Japan", "Kyoto"],
        ),
        // Just after midnight in Tokyo: 2020 by its clock, although UTC still says 2019.
        photo("tokyo-dog.jpg", Some("2020-01-01T00:10:00+09:00"), Some(("FUJIFILM", "X-T30")), None, &["Travel"]),
        photo(
            "home-cat.jpg",
            Some("2019-07-14T09:30:00"),
            Some(("Canon", "Canon EOS 5D Mark IV")),
            Some("EF50mm f/1.8 STM"),
            &["invoice", "Café"],
        ),
        photo("scan-dog.jpg", None, None, None, &[]),
    ]
}

async fn find(index: &dyn Index, query: &str) -> Vec<String> {
    let mut request = SearchRequest::new(Expr::parse(query).unwrap());
    request.sort = Sort::Name;
    request.limit = 100;
    index.search(request).await.unwrap().hits.into_iter().map(|h| h.key).collect()
}

pub async fn check(index: &dyn Index) {
    index.write(corpus()).await.unwrap();
    assert_eq!(find(index, "year:2019").await, ["home-cat.jpg", "kyoto-cat.jpg"], "by the camera's clock");
    assert_eq!(find(index, "year:2020").await, ["tokyo-dog.jpg"]);
    assert_eq!(find(index, "taken:2019-07").await, ["home-cat.jpg"]);
    assert_eq!(find(index, "taken:2019-12-31").await, ["kyoto-cat.jpg"]);
    assert_eq!(find(index, "taken:2019-07-15").await, Vec::<String>::new());
    assert_eq!(find(index, "camera:fujifilm").await, ["kyoto-cat.jpg", "tokyo-dog.jpg"], "the make, any case");
    assert_eq!(find(index, "camera:\"x-t30\"").await, ["kyoto-cat.jpg", "tokyo-dog.jpg"], "the model");
    assert_eq!(find(index, "camera:\"EOS 5D\"").await, ["home-cat.jpg"], "words of the model");
    assert_eq!(find(index, "camera:nikon").await, Vec::<String>::new());
    assert_eq!(find(index, "lens:35mm").await, Vec::<String>::new(), "a part of a word is not a word");
    assert_eq!(find(index, "lens:xf35mmf2").await, ["kyoto-cat.jpg"]);
    assert_eq!(find(index, "keyword:invoice").await, ["home-cat.jpg"]);
    assert_eq!(find(index, "keyword:kyoto").await, ["kyoto-cat.jpg"], "one keyword of several");
    assert_eq!(find(index, "keyword:travel cat").await, ["kyoto-cat.jpg"], "with a label");
    assert_eq!(find(index, "year:2019 -cat").await, Vec::<String>::new());
    assert_eq!(find(index, "camera:fujifilm AND NOT year:2019").await, ["tokyo-dog.jpg"]);
    assert_eq!(find(index, "(year:2019 OR year:2020) dog").await, ["tokyo-dog.jpg"]);
    assert_eq!(find(index, "-year:2019 -year:2020").await, ["scan-dog.jpg"], "no date: in neither");
    assert_eq!(find(index, "country:japan").await, ["kyoto-cat.jpg", "tokyo-dog.jpg"]);
    assert_eq!(find(index, "country:JP").await, ["kyoto-cat.jpg", "tokyo-dog.jpg"], "or its code");
    assert_eq!(find(index, "country:brazil").await, ["home-cat.jpg"]);
    assert_eq!(find(index, "city:\"sao paulo\"").await, ["home-cat.jpg"], "accents folded");
    assert_eq!(find(index, "city:\"SÃO PAULO\"").await, ["home-cat.jpg"], "in the query too");
    assert_eq!(find(index, "city:paulo").await, ["home-cat.jpg"], "a word of the name");
    assert_eq!(find(index, "city:japan").await, Vec::<String>::new(), "a country is not a city");
    assert_eq!(find(index, "place:kyoto").await, ["kyoto-cat.jpg"]);
    assert_eq!(find(index, "place:japan").await, ["kyoto-cat.jpg", "tokyo-dog.jpg"], "any level");
    assert_eq!(find(index, "place:japan -cat").await, ["tokyo-dog.jpg"]);
    assert_eq!(find(index, "keyword:cafe").await, ["home-cat.jpg"], "keywords fold accents too");
    assert_eq!(find(index, "-place:japan").await, ["home-cat.jpg", "scan-dog.jpg"]);

    // By date taken, newest first, the undated last; page by page.
    for per_page in [1, 3] {
        let mut request = SearchRequest::new(Expr::All);
        request.sort = Sort::Taken;
        request.limit = per_page;
        let mut keys = Vec::new();
        loop {
            let response = index.search(request.clone()).await.unwrap();
            keys.extend(response.hits.iter().map(|h| h.key.clone()));
            match response.next {
                Some(next) => request.after = Some(next),
                None => break,
            }
        }
        assert_eq!(keys, ["tokyo-dog.jpg", "kyoto-cat.jpg", "home-cat.jpg", "scan-dog.jpg"], "{per_page} a page");
    }

    // Facets over the matches: years by the camera's clock, cameras by make and
    // model (the make said once), countries by name; most first, ties by name.
    let facets = |query: &str| {
        let mut request = SearchRequest::new(Expr::parse(query).unwrap());
        request.facets = Some(10);
        request.limit = 1;
        async move { index.search(request).await.unwrap().photo_facets }
    };
    let pairs = |list: &[(&str, u64)]| list.iter().map(|(v, n)| (v.to_string(), *n)).collect::<Vec<_>>();
    assert_eq!(
        facets("*").await,
        [
            pairs(&[("2019", 2), ("2020", 1)]),
            pairs(&[("FUJIFILM X-T30", 2), ("Canon EOS 5D Mark IV", 1)]),
            pairs(&[("Japan", 2), ("Brazil", 1)]),
        ]
    );
    assert_eq!(
        facets("cat").await,
        [
            pairs(&[("2019", 2)]),
            pairs(&[("Canon EOS 5D Mark IV", 1), ("FUJIFILM X-T30", 1)]),
            pairs(&[("Brazil", 1), ("Japan", 1)])
        ]
    );

    let mut request = SearchRequest::new(Expr::parse("keyword:invoice").unwrap());
    request.limit = 1;
    let hit = index.search(request).await.unwrap().hits.remove(0);
    let metadata = hit.metadata.clone().expect("the hit carries its metadata");
    assert_eq!(metadata.camera.and_then(|c| c.model).as_deref(), Some("Canon EOS 5D Mark IV"));
    let json = hit.to_json();
    assert_eq!(json["metadata"]["taken_at"], "2019-07-14T09:30:00");
    assert_eq!(json["metadata"]["gps"]["lat"], 35.0);
    assert!(json["metadata"].get("title").is_none(), "absent parts absent: {json}");
    assert_eq!(json["metadata"]["place"]["city"], "São Paulo");
    assert_eq!(json["metadata"]["place"]["country_code"], "BR");
    assert!(json["metadata"]["gps"].get("alt").is_none(), "absent parts absent: {json}");
}
