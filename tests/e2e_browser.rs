//! The web UI in a real browser (Debian's chromium through chromedriver), against
//! the real `bucketlens serve` over a real index of the example photos.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bucketlens_index::{Index, TantivyIndex};
use bucketlens_schemas::{BoundingBox, ImageLabeled, Instance, Label, LabelKind};
use common::browser::Browser;
use common::serve::Server;
use common::World;
use fantoccini::key::Key;
use fantoccini::Locator;
use serde_json::Value;

const HOSTILE: &str = "<img src=x onerror=alert(1)>.png";

/// The rocket's document again, at its version, with a box on its label.
async fn add_box(world: &World) {
    let index = TantivyIndex::open_writer(&world.data.join("index"), 20_000_000).unwrap();
    let hit = index.get("photos", "rocket.jpg").await.unwrap().unwrap();
    let mut labels = hit.labels.clone();
    labels.insert(
        0,
        Label {
            name: "Rocket".into(),
            confidence: 99.0,
            parents: vec!["Vehicle".into()],
            categories: vec![],
            aliases: vec![],
            instances: vec![Instance {
                bounding_box: BoundingBox { left: 0.25, top: 0.1, width: 0.5, height: 0.6 },
                confidence: 97.0,
            }],
        },
    );
    let record = ImageLabeled {
        text: None,
        bucket: hit.bucket,
        key: hit.key,
        version_id: hit.version_id,
        etag: hit.etag,
        size: hit.size,
        last_modified: hit.last_modified,
        sequencer: hit.sequencer,
        kind: LabelKind::Labeled,
        labels,
        image: hit.image,
        model: hit.model,
        labeled_at: hit.labeled_at + 1,
        error: None,
        labeler: None,
        metadata: None,
        hashes: None,
        storage_class: None,
        embedding: None,
    };
    assert_eq!(index.write(vec![record]).await.unwrap().applied, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_detail_boxes_facets_failed_and_a_hostile_key_in_a_real_browser() {
    let world = World::new(1);
    std::fs::write(world.photos.join("broken.jpg"), b"\xFF\xD8\xFF not really a JPEG").unwrap();
    std::fs::copy(world.photos.join("coins.png"), world.photos.join(HOSTILE)).unwrap();
    world.index();
    add_box(&world).await;
    let server = Server::start(world.command(&["serve"]));
    let browser = Browser::start().await;
    let client = &browser.client;

    // Search `cat`: the cat's thumbnail, loaded.
    client.goto(&format!("{}/?q=cat", server.url)).await.unwrap();
    browser
        .until("the cat's thumbnail", "const i = document.querySelector('.card[data-key=\"photos/chelsea.png\"] img'); return i && i.complete && i.naturalWidth > 0")
        .await;
    assert_eq!(browser.cards().await, vec!["photos/chelsea.png"]);
    assert_eq!(client.find(Locator::Css("#q")).await.unwrap().prop("value").await.unwrap().as_deref(), Some("cat"));

    // Clicking opens the detail with its labels.
    client.find(Locator::Css(".card[data-key=\"photos/chelsea.png\"]")).await.unwrap().click().await.unwrap();
    let labels = browser.until("the detail's labels", "return document.querySelector('#detail[open]') && [...document.querySelectorAll('#detail-labels .label-name')].map(b => b.textContent)").await;
    assert!(labels.as_array().unwrap().iter().any(|l| l == "Cat"), "{labels}");
    let meta = browser.js("return document.querySelector('#detail-meta').textContent").await;
    assert!(meta.as_str().unwrap().contains("chelsea.png"), "{meta}");

    // Everything; in the detail, → and ← step through the grid, Esc closes.
    client.goto(&format!("{}/", server.url)).await.unwrap();
    browser.until("every photo", "return document.querySelectorAll('#grid .card').length === 13").await;
    let cards = browser.cards().await;
    client.find(Locator::Css("#grid .card")).await.unwrap().click().await.unwrap();
    let caption = "return document.querySelector('#detail[open]') && document.querySelector('#detail-key').textContent";
    assert_eq!(browser.until("the detail", caption).await, Value::String(cards[0].clone()));
    let dialog = client.find(Locator::Css("#detail")).await.unwrap();
    dialog.send_keys(&Key::Right.to_string()).await.unwrap();
    let next = format!(
        "return document.querySelector('#detail-key').textContent === {}",
        serde_json::to_string(&cards[1]).unwrap()
    );
    browser.until("→ to the next photo", &next).await;
    dialog.send_keys(&Key::Left.to_string()).await.unwrap();
    let back = format!(
        "return document.querySelector('#detail-key').textContent === {}",
        serde_json::to_string(&cards[0]).unwrap()
    );
    browser.until("← back", &back).await;
    dialog.send_keys(&Key::Escape.to_string()).await.unwrap();
    browser.until("Esc closes", "return !document.querySelector('#detail').open").await;

    // A facet click narrows the grid to that label's count.
    let facet = browser.until("the label facets", "const b = [...document.querySelectorAll('#facet-labels .facet')].find(f => Number(f.querySelector('.count').textContent) < 13); return b && [b.querySelector('.facet-name').textContent, Number(b.querySelector('.count').textContent)]").await;
    let (name, count) = (facet[0].as_str().unwrap().to_string(), facet[1].as_u64().unwrap());
    for button in client.find_all(Locator::Css("#facet-labels .facet")).await.unwrap() {
        if button.find(Locator::Css(".facet-name")).await.unwrap().text().await.unwrap() == name {
            button.click().await.unwrap();
            break;
        }
    }
    browser
        .until(
            "the narrowed grid",
            &format!(
                "return document.querySelectorAll('#grid .card').length === {count} && location.search.includes('label=')"
            ),
        )
        .await;
    // Back returns to everything.
    client.back().await.unwrap();
    browser.until("Back", "return document.querySelectorAll('#grid .card').length === 13").await;

    // The hostile key is text: no injected image, no alert.
    let shown = browser
        .js(&format!(
            "return [...document.querySelectorAll('#grid .card .key')].map(k => k.textContent).includes({})",
            serde_json::to_string(HOSTILE).unwrap()
        ))
        .await;
    assert_eq!(shown, Value::Bool(true));
    assert_eq!(browser.js("return document.querySelectorAll('img[src=\"x\"]').length").await, 0);
    assert!(client.get_alert_text().await.is_err(), "a script ran from a key");

    // The rocket's box is drawn where the box says: 25% in, 10% down, half wide, 60% high.
    client.goto(&format!("{}/?q=rocket", server.url)).await.unwrap();
    let card =
        browser.until("the rocket", "return document.querySelector('.card[data-key=\"photos/rocket.jpg\"]')").await;
    assert!(!card.is_null());
    client.find(Locator::Css(".card[data-key=\"photos/rocket.jpg\"]")).await.unwrap().click().await.unwrap();
    let geometry = browser
        .until("the box over the loaded image", "const i = document.querySelector('#detail-img'); const b = document.querySelector('#boxes .box'); if (!i.complete || !i.naturalWidth || !b) return null; const r = i.getBoundingClientRect(), q = b.getBoundingClientRect(); return [r.left, r.top, r.width, r.height, q.left, q.top, q.width, q.height, b.textContent]")
        .await;
    let g: Vec<f64> = geometry.as_array().unwrap()[..8].iter().map(|v| v.as_f64().unwrap()).collect();
    let near = |a: f64, b: f64| (a - b).abs() <= 3.0;
    assert!(g[2] > 100.0 && g[3] > 100.0, "the image is shown: {g:?}");
    assert!(near(g[4], g[0] + 0.25 * g[2]) && near(g[5], g[1] + 0.1 * g[3]), "box corner: {g:?}");
    assert!(near(g[6], 0.5 * g[2]) && near(g[7], 0.6 * g[3]), "box size: {g:?}");
    assert!(geometry[8].as_str().unwrap().starts_with("Rocket 97%"), "{geometry}");
    let shown = browser.js("return document.querySelector('#detail-img').src").await;
    assert!(shown.as_str().unwrap().contains("size=1024"), "a screen-sized rendition: {shown}");
    // Stepping onto the rocket draws no box before its image is there.
    client.goto(&format!("{}/", server.url)).await.unwrap();
    browser.until("every photo", "return document.querySelectorAll('#grid .card').length === 13").await;
    let before = browser.js("const cards = [...document.querySelectorAll('#grid .card')]; const i = cards.findIndex(c => c.dataset.key === 'photos/rocket.jpg'); cards[i - 1].click(); return i").await;
    assert!(before.as_u64().unwrap() > 0);
    browser.until("the photo before the rocket", "const i = document.querySelector('#detail-img'); return document.querySelector('#detail').open && i.complete && i.src.includes('size=1024')").await;
    let at_once = browser.js("document.querySelector('#next').click(); return [document.querySelector('#detail-key').textContent, document.querySelectorAll('#boxes .box').length]").await;
    assert_eq!(at_once, serde_json::json!(["photos/rocket.jpg", 0]), "boxes drawn before their image loaded");
    browser.until("the rocket's box once its image is there", "const i = document.querySelector('#detail-img'); return i.complete && i.src.includes('size=1024') && document.querySelectorAll('#boxes .box').length === 1").await;
    client.find(Locator::Css("#close")).await.unwrap().click().await.unwrap();
    // Closing steps back in the history (the photo was an entry of its own): wait for
    // it, or that step lands after the next page is opened and takes it back (seen in CI).
    browser
        .until(
            "the detail closed",
            "return !document.querySelector('#detail').open && !location.search.includes('photo=')",
        )
        .await;

    // Facet filters are chips beside the typed query, never edits of it: on a query
    // with NOT in it, a label clicked in, out and off never breaks the search.
    client.goto(&format!("{}/?q=person%20AND%20NOT%20cat", server.url)).await.unwrap();
    let n = browser
        .until(
            "the query's results",
            "return !document.body.classList.contains('searching') && document.querySelectorAll('#grid .card').length",
        )
        .await;
    let facet = browser.until("a facet", "const b = [...document.querySelectorAll('#facet-labels .facet')].find(f => Number(f.querySelector('.count').textContent) < Number(document.querySelectorAll('#grid .card').length)); return b && b.querySelector('.facet-name').textContent").await;
    let facet = facet.as_str().unwrap().to_string();
    let click = |what: &'static str| {
        let script = format!("const b = [...document.querySelectorAll('#facet-labels .facet')].find(f => f.querySelector('.facet-name').textContent.replace(/^not /, '') === {}); b.click(); return 1", serde_json::to_string(&facet).unwrap());
        let browser = &browser;
        async move {
            browser.js(&script).await;
            browser.until(what, "return !document.body.classList.contains('searching') && document.querySelector('#error').hidden && document.querySelector('#summary').textContent").await
        }
    };
    click("the label as a filter").await;
    assert_eq!(
        browser.js("return document.querySelector('#q').value").await,
        "person AND NOT cat",
        "the typed query is kept"
    );
    assert_eq!(browser.js("return document.querySelector('#chips').textContent").await, format!("{facet}×"));
    click("the label excluded").await;
    assert_eq!(browser.js("return document.querySelector('#chips').textContent").await, format!("not {facet}×"));
    let listed = browser
        .js("return [...document.querySelectorAll('#facet-labels .facet.exclude .facet-name')].map(n => n.textContent)")
        .await;
    assert_eq!(
        listed,
        serde_json::json!([format!("not {facet}")]),
        "an excluded label stays listed, to be clicked off"
    );
    client.find(Locator::Css("#chips .chip")).await.unwrap().click().await.unwrap();
    browser.until("the chip removed", &format!("return !document.body.classList.contains('searching') && document.querySelectorAll('#chips .chip').length === 0 && document.querySelectorAll('#grid .card').length === {n}")).await;

    // A card names the file, then its folder, then its most specific labels.
    client.goto(&format!("{}/?q=cat", server.url)).await.unwrap();
    let text = browser.until("the cat's card", "const c = document.querySelector('.card[data-key=\"photos/chelsea.png\"]'); return c && [c.querySelector('.key').textContent, c.querySelector('.folder').textContent, c.querySelector('.card-labels').textContent]").await;
    assert_eq!(text[0], "chelsea.png");
    assert_eq!(text[1], "photos/");
    let labels = text[2].as_str().unwrap();
    assert!(labels.contains("Cat") && !labels.contains("Animal") && !labels.contains("Mammal"), "{labels}");

    // A photo has a URL: the card links to it, opening it changes the URL, Back closes
    // only the photo, and the link opens it on a page of its own.
    let href = browser
        .js("return document.querySelector('.card[data-key=\"photos/chelsea.png\"]').getAttribute('href')")
        .await;
    assert!(href.as_str().unwrap().contains("photo=photos%2Fchelsea.png"), "{href}");
    client.find(Locator::Css(".card[data-key=\"photos/chelsea.png\"]")).await.unwrap().click().await.unwrap();
    browser
        .until(
            "the photo's URL",
            "return document.querySelector('#detail').open && location.search.includes('photo=photos%2Fchelsea.png')",
        )
        .await;
    client.back().await.unwrap();
    browser.until("Back closes the photo", "return !document.querySelector('#detail').open && location.search === '?q=cat' && document.querySelectorAll('#grid .card').length === 1").await;
    client.goto(&format!("{}/?photo=photos%2Frocket.jpg", server.url)).await.unwrap();
    browser.until("a linked photo opens", "return document.querySelector('#detail').open && document.querySelector('#detail-key').textContent === 'photos/rocket.jpg' && document.querySelector('#download').getAttribute('download') === 'rocket.jpg'").await;

    // No match: the labels spelled like the query are offered, and one click searches it.
    client.goto(&format!("{}/?q=espreso", server.url)).await.unwrap();
    let offer = browser.until("an offer", "return document.querySelector('.nearest button')?.textContent").await;
    assert_eq!(offer, "Espresso");
    client.find(Locator::Css(".nearest button")).await.unwrap().click().await.unwrap();
    browser.until("the offered search", "return location.search === '?q=Espresso' && document.querySelector('.card[data-key=\"photos/coffee.png\"]')").await;
    // A mistake dims the old results and says where it is.
    let q = client.find(Locator::Css("#q")).await.unwrap();
    q.clear().await.unwrap();
    q.send_keys(&format!("espresso AND{}", Key::Enter)).await.unwrap();
    let said = browser.until("the error", "return document.body.classList.contains('searching') && !document.querySelector('#error').hidden && document.querySelector('#error').textContent").await;
    assert!(said.as_str().unwrap().ends_with("the query ends after AND: a label should follow"), "{said}");

    // The Failed view lists the broken image with its reason.
    client.goto(&format!("{}/failed", server.url)).await.unwrap();
    let row = browser
        .until(
            "the failed row",
            "const r = document.querySelector('#failed tr[data-key=\"photos/broken.jpg\"]'); return r && r.textContent",
        )
        .await;
    let failed = server.json("/api/search?state=failed");
    let code = failed["hits"][0]["error"]["code"].as_str().unwrap();
    assert!(row.as_str().unwrap().contains(code), "{row} lacks {code}");
    // A prefix as the page shows keys (bucket/prefix) finds it too.
    client.goto(&format!("{}/failed?q=photos%2Fbro", server.url)).await.unwrap();
    browser.until("the failed row by bucket/prefix", "return document.querySelectorAll('#failed tbody tr').length === 1 && document.querySelector('#failed tr[data-key=\"photos/broken.jpg\"]')").await;
    // Opened, it says it cannot be shown and why, and offers the original and a retry.
    client.find(Locator::Css("#failed tr[data-key=\"photos/broken.jpg\"] a")).await.unwrap().click().await.unwrap();
    let said = browser.until("the failed object's detail", "const u = document.querySelector('#unshown'); return !u.hidden && document.querySelector('#detail-img').hidden && [u.textContent, [...u.querySelectorAll('a, button')].map(b => b.textContent)]").await;
    assert!(said[0].as_str().unwrap().starts_with("This image cannot be shown. It could not be read: "), "{said}");
    assert_eq!(said[1], serde_json::json!(["Open the original", "Retry"]));
    client.find(Locator::Css("#close")).await.unwrap().click().await.unwrap();

    // On a phone the photos come first, the filters wait behind a button, and a
    // failed object is a card whose reason reads as words.
    client.set_window_size(390, 844).await.unwrap();
    let why = browser.until("the failed card", "const d = document.querySelector('#failed tr[data-key=\"photos/broken.jpg\"] td:nth-child(3)'); return document.documentElement.clientWidth <= 400 && d && d.getBoundingClientRect().width").await;
    assert!(why.as_f64().unwrap() > 250.0, "the reason's width on a phone: {why}");
    client.goto(&format!("{}/", server.url)).await.unwrap();
    let top = browser.until("the phone's grid", "const c = document.querySelector('#grid .card'); return c && document.documentElement.scrollWidth <= document.documentElement.clientWidth && c.getBoundingClientRect().top").await;
    assert!(top.as_f64().unwrap() < 200.0, "the first photo is {top} px down");
    assert_eq!(browser.js("return document.querySelector('#facets').getBoundingClientRect().height").await, 0);
    client.find(Locator::Css("#filters-toggle")).await.unwrap().click().await.unwrap();
    browser
        .until(
            "the filters sheet",
            "return document.querySelector('#facet-labels .facet')?.getBoundingClientRect().height > 0",
        )
        .await;
    if let Ok(path) = std::env::var("UI_PHONE_SCREENSHOT") {
        client.find(Locator::Css("#filters-done")).await.unwrap().click().await.unwrap();
        browser.until("thumbnails", "return [...document.querySelectorAll('#grid img')].slice(0, 6).every(i => i.complete && i.naturalWidth > 0)").await;
        std::fs::write(path, client.screenshot().await.unwrap()).unwrap();
    }

    client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_page_follows_a_watched_folder_without_a_reload() {
    let world = World::new(1);
    let _watch = world.watch(12);
    let server = Server::start(world.command(&["serve"]));
    let browser = Browser::start().await;
    browser.client.goto(&format!("{}/", server.url)).await.unwrap();
    browser.until("the photos", "return document.querySelectorAll('#grid .card').length === 12").await;
    browser.until("the live feed", "return document.body.classList.contains('live')").await;
    browser.js("window.sameDocument = true; return 1").await;
    // The README's pictures: `UI_SCREENSHOT=docs/screenshot.png UI_PHONE_SCREENSHOT=docs/screenshot-phone.png scripts/test e2e_browser`.
    if let Ok(path) = std::env::var("UI_SCREENSHOT") {
        browser
            .until(
                "thumbnails",
                "return [...document.querySelectorAll('#grid img')].every(i => i.complete && i.naturalWidth > 0)",
            )
            .await;
        std::fs::write(path, browser.client.screenshot().await.unwrap()).unwrap();
    }

    std::fs::copy(world.photos.join("chelsea.png"), world.photos.join("new-cat.png")).unwrap();
    browser.until("the new photo", "return document.querySelector('.card[data-key=\"photos/new-cat.png\"]')").await;
    std::fs::remove_file(world.photos.join("flower.jpg")).unwrap();
    browser
        .until("the deleted photo to go", "return !document.querySelector('.card[data-key=\"photos/flower.jpg\"]')")
        .await;
    assert_eq!(browser.js("return window.sameDocument === true").await, Value::Bool(true), "no reload");
    let status = browser.js("return document.querySelector('#status').textContent").await;
    assert_eq!(status, "12 photos", "in words a user knows");

    // The keyboard: `/` searches, `?` explains, arrows move across the cards (a row
    // down is a row's worth of cards), and a skip link leads to the photos.
    let key = |target: &str, key: &str| {
        format!("const t = {target}; t.focus(); t.dispatchEvent(new KeyboardEvent('keydown', {{ key: '{key}', bubbles: true, cancelable: true }})); return 1")
    };
    browser.js(&key("document.body", "/")).await;
    browser.until("/ to focus the search", "return document.activeElement === document.querySelector('#q')").await;
    browser.js("document.querySelector('#q').blur(); return 1").await;
    browser.js(&key("document.body", "?")).await;
    browser.until("? to show the help", "return document.querySelector('#help').open").await;
    browser.js("document.querySelector('#help-close').click(); return 1").await;
    let cards = "[...document.querySelectorAll('#grid .card')]";
    browser.js(&key(&format!("{cards}[0]"), "ArrowRight")).await;
    browser.until("→ to the second card", &format!("return document.activeElement === {cards}[1]")).await;
    let columns = browser.js(&format!("return {cards}.filter(c => c.offsetTop === {cards}[0].offsetTop).length")).await;
    browser.js(&key(&format!("{cards}[1]"), "ArrowDown")).await;
    let below = browser.js(&format!("return {cards}.indexOf(document.activeElement)")).await;
    assert_eq!(below.as_u64(), columns.as_u64().map(|c| c + 1), "↓ goes a row down");
    assert_eq!(browser.js("return document.querySelector('#skip').getAttribute('href')").await, "#grid");

    // A phone-sized window: the grid is there, nothing wider than the screen.
    browser.client.set_window_size(390, 844).await.unwrap();
    browser
        .until("the phone layout", "const w = document.documentElement.clientWidth; return w <= 400 && document.documentElement.scrollWidth <= w && document.querySelector('#grid .card').getBoundingClientRect().right <= w")
        .await;
    browser.client.clone().close().await.unwrap();
}

/// Eight tabs, one live stream: each tab loads and follows changes (HTTP/1.1 gives a
/// host 6 connections, and a stream per tab left the 7th tab blank). Pages left for
/// others keep no stream, so searches never stall. `serve` stops on SIGTERM with
/// the tabs open, and once it is back the pages recover by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_tabs_back_and_forward_and_a_restart_keep_every_page_live() {
    let world = World::new(1);
    let _watch = world.watch(12);
    let mut server = Server::start(world.command(&["serve"]));
    let browser = Browser::start().await;
    let client = &browser.client;
    let all = "return document.querySelectorAll('#grid .card').length === 12";
    client.goto(&format!("{}/", server.url)).await.unwrap();
    browser.until("the first tab", all).await;
    let mut tabs = vec![client.window().await.unwrap()];
    for n in 2..=8 {
        let tab = client.new_window(true).await.unwrap().handle;
        client.switch_to_window(tab.clone()).await.unwrap();
        client.goto(&format!("{}/", server.url)).await.unwrap();
        browser.until(&format!("tab {n} to load its photos"), all).await;
        tabs.push(tab);
    }
    browser.until("the live dot in the last tab", "return document.body.classList.contains('live')").await;
    std::fs::copy(world.photos.join("chelsea.png"), world.photos.join("new-cat.png")).unwrap();
    let new_cat = "return !!document.querySelector('.card[data-key=\"photos/new-cat.png\"]')";
    for (n, tab) in tabs.iter().enumerate() {
        client.switch_to_window(tab.clone()).await.unwrap();
        browser.until(&format!("tab {} to show the new photo", n + 1), new_cat).await;
    }

    // Back and forward across full page loads, then a search: it answers at once,
    // and the results shown are the new query's.
    for q in ["cat", "coffee", "rocket", "cat", "coffee", "rocket", "cat", "coffee"] {
        client.goto(&format!("{}/?q={q}", server.url)).await.unwrap();
        browser
            .until(&format!("the results for {q}"), "return document.querySelectorAll('#grid .card').length > 0")
            .await;
    }
    for _ in 0..4 {
        client.back().await.unwrap();
    }
    let q = client.find(Locator::Css("#q")).await.unwrap();
    q.clear().await.unwrap();
    q.send_keys(&format!("rocket{}", Key::Enter)).await.unwrap();
    let rocket = "return !document.body.classList.contains('searching') && JSON.stringify([...document.querySelectorAll('#grid .card')].map(c => c.dataset.key)) === '[\"photos/rocket.jpg\"]'";
    browser.within("a search after back and forward", rocket, std::time::Duration::from_secs(10)).await;

    // Esc closes the suggestions and keeps what was typed.
    q.clear().await.unwrap();
    q.send_keys("ca").await.unwrap();
    browser.until("suggestions", "return !document.querySelector('#suggestions').hidden").await;
    q.send_keys(&Key::Escape.to_string()).await.unwrap();
    let kept = browser
        .until(
            "the suggestions to close",
            "return document.querySelector('#suggestions').hidden && document.querySelector('#q').value",
        )
        .await;
    assert_eq!(kept, "ca");

    // SIGTERM with eight pages open: serve ends (its drain is bounded), the pages say
    // they are not live; a photo added meanwhile shows once serve is back.
    let addr = server.addr();
    let status = server.terminate(std::time::Duration::from_secs(15));
    assert!(status.is_some_and(|s| s.success()), "serve did not stop on SIGTERM with pages open: {status:?}");
    browser.until("the page to see the server gone", "return !document.body.classList.contains('live')").await;
    std::fs::copy(world.photos.join("coffee.png"), world.photos.join("new-coffee.png")).unwrap();
    common::wait_until("the new photo indexed", std::time::Duration::from_secs(60), || {
        world.status()["documents"] == 14
    });
    let _server = Server::start_on(world.command(&["serve"]), &addr);
    let back = "return document.body.classList.contains('live') && document.querySelector('#error').hidden && !!document.querySelector('.card[data-key=\"photos/new-coffee.png\"]')";
    for (n, tab) in tabs.iter().enumerate().take(3) {
        client.switch_to_window(tab.clone()).await.unwrap();
        browser.until(&format!("tab {} to recover by itself", n + 1), back).await;
    }
    client.clone().close().await.unwrap();
}

/// Folders: a card's folder shows that folder's photos, breadcrumbs lead back up,
/// and the folder is in the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cards_folder_and_the_breadcrumbs_browse_the_bucket_by_folder() {
    let world = World::new(2);
    world.index();
    let server = Server::start(world.command(&["serve"]));
    let browser = Browser::start().await;
    let client = &browser.client;
    client.goto(&format!("{}/", server.url)).await.unwrap();
    browser.until("every photo", "return document.querySelectorAll('#grid .card').length === 24").await;
    assert_eq!(browser.js("return document.querySelector('#crumbs').hidden").await, true);
    browser.js("[...document.querySelectorAll('#grid .card')].find(c => c.dataset.key.startsWith('photos/set-1/')).querySelector('.folder').click(); return 1").await;
    let folder = "return !document.body.classList.contains('searching') && document.querySelectorAll('#grid .card').length === 12 && [...document.querySelectorAll('#grid .card')].every(c => c.dataset.key.startsWith('photos/set-1/')) && !document.querySelector('#detail').open && location.search === '?bucket=photos&prefix=set-1%2F' && document.querySelector('#crumbs').textContent";
    assert_eq!(browser.until("the folder's photos", folder).await, "All photos › photos › set-1");
    browser
        .js("[...document.querySelectorAll('#crumbs button')].find(b => b.textContent === 'photos').click(); return 1")
        .await;
    browser
        .until(
            "the bucket's photos",
            "return document.querySelectorAll('#grid .card').length === 24 && location.search === '?bucket=photos'",
        )
        .await;
    client.back().await.unwrap();
    browser.until("Back to the folder", "return document.querySelectorAll('#grid .card').length === 12").await;
    client.clone().close().await.unwrap();
}

/// Sort, file names and the photos with no label, as a person uses them: the grid
/// shows a library newest first and says so, a chosen order stays in the URL, a
/// word that is no label offers the file names, and "No labels" at the slider's
/// confidence lists exactly the photos with no label that sure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_file_names_and_photos_with_no_label_in_a_real_browser() {
    let world = World::new(1);
    // Each photo a day newer than the one before it by name.
    let mut names: Vec<String> =
        std::fs::read_dir(&world.photos).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let day = std::time::Duration::from_secs(86_400);
    let first = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    for (i, name) in names.iter().enumerate() {
        let file = std::fs::File::options().write(true).open(world.photos.join(name)).unwrap();
        file.set_modified(first + day * i as u32).unwrap();
    }
    world.index();
    let server = Server::start(world.command(&["serve"]));
    let browser = Browser::start().await;
    let client = &browser.client;
    let keys: Vec<String> = names.iter().map(|n| format!("photos/{n}")).collect();
    let settled = "!document.body.classList.contains('searching')";

    client.goto(&format!("{}/", server.url)).await.unwrap();
    let all = format!("return {settled} && document.querySelectorAll('#grid .card').length === {}", keys.len());
    browser.until("every photo", &all).await;
    let newest: Vec<String> = keys.iter().rev().cloned().collect();
    assert_eq!(browser.cards().await, newest, "a library is shown newest first");
    assert_eq!(browser.js("return document.querySelector('#sort').value").await, "newest", "and says so");

    browser.js("const s = document.querySelector('#sort'); s.value = 'name'; s.dispatchEvent(new Event('change')); return 1").await;
    browser.until("by name", &format!("return {settled} && location.search === '?sort=name' && document.querySelector('#grid .card').dataset.key === {}", serde_json::to_string(&keys[0]).unwrap())).await;
    assert_eq!(browser.cards().await, keys, "A to Z");
    client.goto(&format!("{}/?q=cat", server.url)).await.unwrap();
    browser
        .until("the cat", &format!("return {settled} && document.querySelectorAll('#grid .card').length === 1"))
        .await;
    assert_eq!(
        browser.js("return document.querySelector('#sort').value").await,
        "relevance",
        "a label search: best match"
    );

    // File names: in any case, and offered when a word is no label.
    client.goto(&format!("{}/?q=name:CHEL", server.url)).await.unwrap();
    browser
        .until("a file name", &format!("return {settled} && document.querySelectorAll('#grid .card').length === 1"))
        .await;
    assert_eq!(browser.cards().await, vec!["photos/chelsea.png"]);
    client.goto(&format!("{}/?q=chelsea", server.url)).await.unwrap();
    let offer = browser
        .until(
            "the offer of file names",
            "const b = document.querySelector('#empty .names button'); return b && b.textContent",
        )
        .await;
    assert_eq!(offer, "name:chelsea");
    browser.js("document.querySelector('#empty .names button').click(); return 1").await;
    browser.until("the file found", &format!("return {settled} && document.querySelectorAll('#grid .card').length === 1 && document.querySelector('#q').value === 'name:chelsea'")).await;
    assert_eq!(browser.cards().await, vec!["photos/chelsea.png"]);

    // At 95%, Photos has the photos with some label that sure, No labels the others.
    let sure: Vec<String> = world
        .all_documents()
        .into_iter()
        .filter(|(_, labels)| labels.iter().any(|(_, c)| *c >= 95.0))
        .map(|(key, _)| format!("photos/{key}"))
        .collect();
    let unsure: Vec<String> = keys.iter().filter(|k| !sure.contains(k)).cloned().collect();
    assert!(!sure.is_empty() && !unsure.is_empty(), "the examples have both: {sure:?}");
    client.goto(&format!("{}/?min=95&sort=name", server.url)).await.unwrap();
    browser
        .until(
            "the sure photos",
            &format!("return {settled} && document.querySelectorAll('#grid .card').length === {}", sure.len()),
        )
        .await;
    assert_eq!(browser.cards().await, sure);
    browser.js("document.querySelector('#view-unlabeled').click(); return 1").await;
    browser.until("no label at 95%", &format!("return {settled} && document.querySelector('#view-unlabeled').getAttribute('aria-current') === 'page' && document.querySelectorAll('#grid .card').length === {}", unsure.len())).await;
    assert_eq!(browser.cards().await, unsure);
    assert_eq!(browser.js("return location.search").await, "?q=-has%3Alabels&min=95&sort=name");
    client.clone().close().await.unwrap();
}

/// On a slow link (Chromium's network emulation: 400 ms a request, 30 KB/s) the
/// detail view shows the grid's thumbnail at once, then the screen-sized rendition,
/// and never a box before the image it belongs to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_detail_view_shows_the_thumbnail_at_once_and_boxes_only_over_their_image() {
    let world = World::new(1);
    world.index();
    add_box(&world).await;
    let server = Server::start(world.command(&["serve"]));
    let browser = Browser::start().await;
    let client = &browser.client;
    client.goto(&format!("{}/?q=rocket", server.url)).await.unwrap();
    browser.until("the rocket's thumbnail", "const i = document.querySelector('.card[data-key=\"photos/rocket.jpg\"] img'); return i && i.complete && i.naturalWidth > 0").await;
    browser.throttle(Duration::from_millis(400), 30_000).await;
    let at_once = browser.js("document.querySelector('.card[data-key=\"photos/rocket.jpg\"]').click(); const i = document.querySelector('#detail-img'); return [i.getAttribute('src'), i.complete && i.naturalWidth > 0, document.querySelectorAll('#boxes .box').length]").await;
    assert!(at_once[0].as_str().unwrap().contains("size=320"), "the grid's thumbnail first: {at_once}");
    assert_eq!(
        (&at_once[1], &at_once[2]),
        (&Value::Bool(true), &Value::from(0)),
        "shown from the cache, no box yet: {at_once}"
    );
    // Until the rendition is there, no box; then the box over it.
    let started = std::time::Instant::now();
    let mut waited_for_it = false;
    loop {
        let now = browser.js("const i = document.querySelector('#detail-img'); return [i.getAttribute('src').includes('size=1024') && i.complete && i.naturalWidth > 0, document.querySelectorAll('#boxes .box').length]").await;
        let (rendition, boxes) = (now[0].as_bool().unwrap(), now[1].as_u64().unwrap());
        if !rendition {
            assert_eq!(boxes, 0, "a box before its image");
            waited_for_it = true;
        } else if boxes == 1 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the rendition and its box: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(waited_for_it, "the link was slow enough to see the thumbnail before the rendition");
    // The emulation took: the rendition came no sooner than one request's latency.
    assert!(started.elapsed() >= Duration::from_millis(400), "not throttled: {:?}", started.elapsed());
    client.clone().close().await.unwrap();
}

/// A 0-byte object (an upload that failed) in the browser: Failed lists it with its
/// reason, its detail says it cannot be shown and offers the original, which answers
/// with the nothing it is; the server goes on, no handler panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_byte_object_is_listed_as_failed_and_its_detail_says_why() {
    let world = World::new(1);
    std::fs::write(world.photos.join("empty.jpg"), b"").unwrap();
    world.index();
    let server = Server::start(world.command(&["serve"]));
    let browser = Browser::start().await;
    browser.client.goto(&format!("{}/failed", server.url)).await.unwrap();
    let row = browser
        .until(
            "the 0-byte object's row",
            "const r = document.querySelector('#failed tr[data-key=\"photos/empty.jpg\"]'); return r && r.textContent",
        )
        .await;
    assert!(row.as_str().unwrap().contains("photos/empty.jpg"), "{row}");
    browser.js("document.querySelector('#failed tr[data-key=\"photos/empty.jpg\"] a').click(); return 1").await;
    let said = browser
        .until("its detail", "const u = document.querySelector('#unshown'); return !u.hidden && u.textContent")
        .await;
    assert!(said.as_str().unwrap().starts_with("This image cannot be shown"), "{said}");
    let original = browser
        .js("return fetch(document.querySelector('#unshown a').href).then(r => r.arrayBuffer().then(b => [r.status, b.byteLength]))")
        .await;
    assert_eq!(original, serde_json::json!([200, 0]), "the original: nothing, answered normally");
    assert_eq!(server.get("/api/search?q=cat").status, 200, "the server goes on");
    let said: Vec<String> = server.stderr.try_iter().collect();
    assert!(!said.iter().any(|l| l.contains("panicked")), "a handler panicked:\n{}", said.join("\n"));
    browser.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phones_heic_shows_in_the_grid_and_in_the_detail_view() {
    let world = World::new(0);
    let heic = common::examples_dir().join("../../tests/fixtures/heif/chelsea.heic");
    std::fs::copy(heic, world.photos.join("IMG_0001.HEIC")).unwrap();
    world.index();
    let server = Server::start(world.command(&["serve"]));
    let browser = Browser::start().await;
    let client = &browser.client;
    client.goto(&format!("{}/?q=cat", server.url)).await.unwrap();
    let card = ".card[data-key=\"photos/IMG_0001.HEIC\"]";
    browser
        .until(
            "the HEIC's thumbnail",
            &format!("const i = document.querySelector('{card} img'); return i && i.complete && i.naturalWidth > 0"),
        )
        .await;
    client.find(Locator::Css(card)).await.unwrap().click().await.unwrap();
    // Chromium cannot show a HEIC itself: the detail view shows its largest thumbnail.
    let shown = browser
        .until("the HEIC in the detail view", "const i = document.querySelector('#detail-img'); return i.complete && i.naturalWidth > 0 && i.getAttribute('src').includes('size=1024') && [i.naturalWidth, i.naturalHeight, i.getAttribute('src')]")
        .await;
    assert_eq!((shown[0].as_u64(), shown[1].as_u64()), (Some(451), Some(300)), "{shown}");
    assert!(shown[2].as_str().unwrap().starts_with("/api/thumbnails/photos/IMG_0001.HEIC?size=1024"), "{shown}");
    browser.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_page_asks_for_it_then_works() {
    let world = World::new(1);
    world.index();
    let mut command = world.command(&["serve"]);
    command.env("BUCKETLENS_SERVE__TOKEN", "correct-horse-battery");
    let server = Server::start(command);
    let browser = Browser::start().await;
    let client = &browser.client;
    client.goto(&format!("{}/?q=cat", server.url)).await.unwrap();
    browser.until("the login page", "return location.pathname === '/login' && document.querySelector('#token')").await;
    let field = client.find(Locator::Css("#token")).await.unwrap();
    field.send_keys("wrong-token-entirely").await.unwrap();
    client.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    browser
        .until("the refusal", "return document.querySelector('.error') && document.querySelector('.error').textContent")
        .await;
    client.find(Locator::Css("#token")).await.unwrap().send_keys("correct-horse-battery").await.unwrap();
    client.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    browser
        .until(
            "the page asked for",
            "return location.search === '?q=cat' && document.querySelectorAll('#grid .card').length === 1",
        )
        .await;
    let cookie_visible = browser.js("return document.cookie.includes('bucketlens')").await;
    assert_eq!(cookie_visible, Value::Bool(false), "the cookie is HttpOnly");
    // Sign out: back to the sign-in page, and the photos ask for it again.
    browser.until("the sign-out button", "return !document.querySelector('#signout').hidden").await;
    browser.js("document.querySelector('#signout').submit(); return 1").await;
    browser.until("signed out", "return location.pathname === '/login'").await;
    client.goto(&format!("{}/", server.url)).await.unwrap();
    browser.until("the login page again", "return location.pathname === '/login'").await;
    client.clone().close().await.unwrap();
}

/// The photos' own metadata in the UI: the year, camera and country facets over the
/// matches, the timeline (the grid under a heading per month when sorted by date
/// taken), and the detail view's "Photo" section, whose camera is a search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_photo_facets_and_the_photos_metadata_in_a_real_browser() {
    let world = World::new(0);
    let tagged = common::examples_dir().join("../tagged");
    for name in ["temple.jpg", "daisy.jpg", "launch.jpg"] {
        std::fs::copy(tagged.join(name), world.photos.join(name)).unwrap();
    }
    world.index();
    let server = Server::start(world.command(&["serve"]));
    let browser = Browser::start().await;
    let client = &browser.client;

    // By date taken: newest first, a heading where the month changes.
    client.goto(&format!("{}/?sort=taken", server.url)).await.unwrap();
    browser.until("the three photos", "return document.querySelectorAll('#grid .card').length === 3").await;
    let timeline = browser
        .js("return [...document.querySelectorAll('#grid > *')].map(n => n.classList.contains('month') ? 'month ' + n.textContent : n.dataset.key)")
        .await;
    assert_eq!(
        timeline,
        serde_json::json!([
            "month May 2021",
            "photos/daisy.jpg",
            "month July 2019",
            "photos/temple.jpg",
            "month February 2015",
            "photos/launch.jpg"
        ])
    );
    assert_eq!(browser.js("return document.querySelector('#sort').value").await, "taken");

    // Sorted otherwise, no headings.
    client.goto(&format!("{}/?sort=name", server.url)).await.unwrap();
    browser.until("sorted by name", "return document.querySelectorAll('#grid .card').length === 3 && document.querySelector('#sort').value === 'name'").await;
    assert_eq!(browser.js("return document.querySelectorAll('#grid .month').length").await, 0);

    // The facets, with their counts.
    let facet = |id: &str| {
        format!("return [...document.querySelectorAll('#{id} .facet')].map(f => f.querySelector('.facet-name').textContent + ' ' + f.querySelector('.count').textContent)")
    };
    let years = browser.until("the years", &facet("facet-years")).await;
    assert_eq!(years, serde_json::json!(["2015 1", "2019 1", "2021 1"]));
    assert_eq!(
        browser.js(&facet("facet-cameras")).await,
        serde_json::json!(["Canon EOS 5D Mark IV 1", "FUJIFILM X-T30 1", "NIKON CORPORATION NIKON D4 1"])
    );
    assert_eq!(browser.js(&facet("facet-countries")).await, serde_json::json!(["China 1", "United States 1"]));

    // A year's facet puts its qualifier in the search box and narrows the grid.
    for button in client.find_all(Locator::Css("#facet-years .facet")).await.unwrap() {
        if button.find(Locator::Css(".facet-name")).await.unwrap().text().await.unwrap() == "2019" {
            button.click().await.unwrap();
            break;
        }
    }
    browser
        .until("year:2019", "return document.querySelector('#q').value === 'year:2019' && document.querySelectorAll('#grid .card').length === 1")
        .await;
    assert_eq!(browser.cards().await, vec!["photos/temple.jpg"]);
    assert_eq!(browser.js(&facet("facet-countries")).await, serde_json::json!(["China 1"]), "counted over the matches");

    // The detail's Photo section.
    client.find(Locator::Css(".card[data-key=\"photos/temple.jpg\"]")).await.unwrap().click().await.unwrap();
    let rows = browser
        .until("the photo's metadata", "return document.querySelector('#detail[open]') && [...document.querySelectorAll('#detail-photo dt')].map(dt => dt.textContent + ': ' + dt.nextElementSibling.textContent)")
        .await;
    assert_eq!(
        rows,
        serde_json::json!([
            "taken: 2019-07-14 09:30:05+08:00",
            "camera: FUJIFILM X-T30",
            "lens: XF35mmF2 R WR",
            "exposure: 35 mm · f/5.6 · 1/250 s · ISO 200",
            "place: Beijing, China",
            "position: 39.99990, 116.27550 · 52 m",
            "title: Temple roofs",
            "keywords: travel, Places, China, Beijing",
            "rating: ★★★★☆"
        ])
    );
    // Its camera is a search for that camera.
    client.find(Locator::Css("#detail-photo dd button")).await.unwrap().click().await.unwrap();
    browser
        .until("camera search", "return !document.querySelector('#detail').open && document.querySelector('#q').value === 'camera:\"FUJIFILM X-T30\"' && document.querySelectorAll('#grid .card').length === 1")
        .await;

    // A photo without metadata has no Photo section.
    client.goto(&format!("{}/?q=camera:canon", server.url)).await.unwrap();
    browser.until("the daisy", "return document.querySelectorAll('#grid .card').length === 1").await;
    let daisy = browser.js("return document.querySelector('#facet-countries').closest('section').hidden").await;
    assert_eq!(daisy, Value::Bool(true), "no country facet where no match has a place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duplicates_view_and_a_photos_copies_in_a_real_browser() {
    let world = World::new(0);
    let examples = common::examples_dir();
    let cat = std::fs::read(examples.join("chelsea.png")).unwrap();
    std::fs::create_dir_all(world.photos.join("backup")).unwrap();
    std::fs::write(world.photos.join("chelsea.png"), &cat).unwrap();
    std::fs::write(world.photos.join("backup/chelsea.png"), &cat).unwrap();
    let image = image::load_from_memory(&cat).unwrap();
    image.resize(225, 150, image::imageops::FilterType::Lanczos3).save(world.photos.join("chelsea-small.png")).unwrap();
    std::fs::copy(examples.join("coffee.png"), world.photos.join("coffee.png")).unwrap();
    world.index();
    let server = Server::start(world.command(&["serve"]));
    let browser = Browser::start().await;
    let client = &browser.client;

    // The Duplicates view: the groups side by side, the one to keep first, and the total.
    client.goto(&format!("{}/", server.url)).await.unwrap();
    browser.until("the grid", "return document.querySelectorAll('#grid .card').length === 4").await;
    browser.js("document.querySelector('#view-duplicates').click(); return true").await;
    let groups = browser
        .until(
            "the groups",
            "const g = [...document.querySelectorAll('#dupes .group')]; return g.length === 2 && g.map(s => [s.dataset.kind, [...s.querySelectorAll('.member .key')].map(k => k.textContent), s.querySelector('.member .badge').textContent])",
        )
        .await;
    assert_eq!(
        groups,
        serde_json::json!([
            ["exact", ["photos/chelsea.png", "photos/backup/chelsea.png"], "keep"],
            ["near", ["photos/chelsea.png", "photos/chelsea-small.png"], "keep"]
        ])
    );
    assert_eq!(
        browser.js("return document.querySelector('#grid').hidden").await,
        true,
        "the grid gives way to the groups"
    );
    let summary = browser.js("return document.querySelector('#summary').textContent").await;
    assert!(
        summary.as_str().unwrap().starts_with("2 groups · ") && summary.as_str().unwrap().contains("reclaimable"),
        "{summary}"
    );
    assert!(browser.js("return location.pathname").await == "/duplicates");
    if let Some(path) = std::env::var_os("UI_DUPLICATES_SCREENSHOT") {
        std::fs::write(path, client.screenshot().await.unwrap()).unwrap();
    }

    // A member opens the photo, whose detail lists its copies.
    client.find(Locator::Css("#dupes .member")).await.unwrap().click().await.unwrap();
    let copies = browser
        .until("the copies", "const l = [...document.querySelectorAll('#detail[open] #detail-copies li a')]; return l.length === 2 && l.map(a => a.textContent)")
        .await;
    assert_eq!(copies, serde_json::json!(["photos/backup/chelsea.png", "photos/chelsea-small.png"]));
    let said = browser.js("return document.querySelector('#detail-copies li .conf').textContent").await;
    assert_eq!(said, "the same bytes");

    // "More like this": the grid becomes the photos most like it, most alike first,
    // each with how alike, in a link that keeps it; "show all photos" goes back.
    client.find(Locator::Css("#more-like")).await.unwrap().click().await.unwrap();
    let alike = browser
        .until(
            "the photos like it",
            "const c = [...document.querySelectorAll('#grid .card')]; return !document.querySelector('#detail').open && c.length === 3 && c.map(e => [e.querySelector('.key').textContent, e.querySelector('.alike').textContent])",
        )
        .await;
    let alike = alike.as_array().unwrap();
    assert_eq!(alike[0][0], "chelsea.png", "the copy in backup/, the same bytes: {alike:?}");
    assert_eq!(alike[0][1], "100% alike");
    assert_eq!(alike[1][0], "chelsea-small.png");
    assert_eq!(alike[2][0], "coffee.png", "another picture last: {alike:?}");
    let percent = |v: &serde_json::Value| v.as_str().unwrap().trim_end_matches("% alike").parse::<u32>().unwrap();
    assert!(percent(&alike[1][1]) >= 90 && percent(&alike[2][1]) < 50, "{alike:?}");
    let url = browser.js("return new URL(location.href).searchParams.get('like')").await;
    assert_eq!(url, "photos/chelsea.png");
    let summary = browser.js("return document.querySelector('#summary').textContent").await;
    assert_eq!(summary, "3 most like photos/chelsea.png · show all photos");
    if let Some(path) = std::env::var_os("UI_MORE_LIKE_SCREENSHOT") {
        std::fs::write(path, client.screenshot().await.unwrap()).unwrap();
    }
    browser.js("document.querySelector('#summary button').click(); return true").await;
    browser
        .until(
            "all photos again",
            "return document.querySelectorAll('#grid .card').length === 4 && !document.querySelector('#grid .alike')",
        )
        .await;
}

/// Search by meaning in the browser: "by meaning" beside "by label", a phrase ranks
/// the photo it means first (a synthetic CLIP-class pair whose meaning is known:
/// models/clip/synthetic.py `colours`, copied in by hand as on an air-gapped machine),
/// each card saying how alike, and the mode kept in the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phrase_searched_by_meaning_in_a_real_browser() {
    let mut world = World::new(0);
    std::fs::copy(common::examples_dir().join("chelsea.png"), world.photos.join("chelsea.png")).unwrap();
    for (name, rgb) in [("red", [210u8, 40, 35]), ("green", [40, 190, 60]), ("blue", [35, 50, 215])] {
        image::RgbImage::from_pixel(320, 240, image::Rgb(rgb)).save(world.photos.join(format!("{name}.png"))).unwrap();
    }
    let models = world.tmp.path().join("models");
    let python = std::env::var("MODEL_PYTHON").expect("MODEL_PYTHON: run the tests with scripts/test");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/clip/synthetic.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args(["colours", "clip-colours", models.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(models.join("clip-colours/model.toml"), &out.stdout).unwrap();
    world.env.push(("BUCKETLENS_MODELS_DIR".into(), models.to_str().unwrap().into()));
    world.env.push(("BUCKETLENS_LABELER__EMBEDDER".into(), "clip-colours".into()));
    world.index();
    let server = Server::start(world.command(&["serve"]));
    let browser = Browser::start().await;
    let client = &browser.client;
    client.goto(&format!("{}/", server.url)).await.unwrap();
    browser.until("the grid", "return document.querySelectorAll('#grid .card').length === 4").await;
    assert_eq!(browser.js("return document.querySelector('#mode').value").await, "label");
    browser.js("const m = document.querySelector('#mode'); m.value = 'meaning'; m.dispatchEvent(new Event('change')); return 1").await;
    assert_eq!(browser.js("return document.querySelector('#q').getAttribute('aria-label')").await, "Search by meaning");
    let q = client.find(Locator::Css("#q")).await.unwrap();
    q.send_keys(&format!("red{}", Key::Enter)).await.unwrap();
    let found = browser
        .until(
            "the red photo first",
            "const c = [...document.querySelectorAll('#grid .card')]; return !document.body.classList.contains('searching') && c.length > 0 && c[0].dataset.key === 'photos/red.png' && c.map(e => [e.dataset.key, e.querySelector('.alike').textContent])",
        )
        .await;
    let found = found.as_array().unwrap();
    assert!(!found.iter().any(|c| c[0] == "photos/green.png" || c[0] == "photos/blue.png"), "{found:?}");
    assert!(found[0][1].as_str().unwrap().ends_with("% alike"), "{found:?}");
    let url = browser
        .js("const u = new URL(location.href); return [u.searchParams.get('q'), u.searchParams.get('mode')]")
        .await;
    assert_eq!(url, serde_json::json!(["red", "meaning"]));
    let summary = browser.js("return document.querySelector('#summary').textContent").await;
    assert!(summary.as_str().unwrap().contains("by meaning, best first: “red”"), "{summary}");
    if let Some(path) = std::env::var_os("UI_MEANING_SCREENSHOT") {
        std::fs::write(path, client.screenshot().await.unwrap()).unwrap();
    }
    // A link keeps the mode: a new tab opens the same search.
    client.goto(&format!("{}/?q=blue&mode=meaning", server.url)).await.unwrap();
    browser
        .until(
            "the blue photo first",
            "const c = document.querySelector('#grid .card'); return c && c.dataset.key === 'photos/blue.png'",
        )
        .await;
    // Back to labels: "blue" is no label here, so nothing.
    browser.js("document.querySelector('#summary button').click(); return 1").await;
    browser
        .until(
            "no label blue",
            "return !document.querySelector('#empty').hidden && document.querySelector('#mode').value === 'label'",
        )
        .await;
}

/// Text in a photo, in a real browser: `text:nord` finds the sign, its card shows the
/// line that matched, and the detail lists the lines and boxes each over its words.
#[tokio::test]
async fn a_word_in_a_photo_searched_and_boxed_in_a_real_browser() {
    let mut world = World::new(0);
    std::fs::copy(common::examples_dir().join("chelsea.png"), world.photos.join("chelsea.png")).unwrap();
    let python = std::env::var("MODEL_PYTHON").expect("MODEL_PYTHON: run the tests with scripts/test");
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(
            r#"
import sys
from PIL import Image, ImageDraw, ImageFont
sign = Image.new("RGB", (800, 400), (20, 60, 140))
draw = ImageDraw.Draw(sign)
bold = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 72)
draw.text((60, 60), "GARE DU NORD", font=bold, fill="white")
left, top, right, bottom = draw.textbbox((60, 60), "GARE DU NORD", font=bold)
print(left / 800, top / 400, right / 800, bottom / 400)
draw.text((60, 240), "Sortie 42", font=ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 56), fill="white")
sign.save(sys.argv[1])
"#,
        )
        .arg(world.photos.join("sign.jpg"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Where the first line's ink is, in fractions of the sign (Pillow's textbbox).
    let drawn: Vec<f64> =
        String::from_utf8(out.stdout).unwrap().split_whitespace().map(|v| v.parse().unwrap()).collect();
    world.env.push(("BUCKETLENS_LABELER__TEXT".into(), "true".into()));
    world.index();
    let server = Server::start(world.command(&["serve"]));
    let browser = Browser::start().await;
    let client = &browser.client;
    client.goto(&format!("{}/?q=text:nord", server.url)).await.unwrap();
    let card = browser
        .until("the sign's card", "const c = document.querySelector('#grid .card'); return c && !document.body.classList.contains('searching') && [document.querySelectorAll('#grid .card').length, c.dataset.key, c.querySelector('.card-text')?.textContent]")
        .await;
    assert_eq!(card[0], 1, "{card}");
    assert_eq!(card[1], "photos/sign.jpg");
    assert!(card[2].as_str().unwrap().to_lowercase().contains("nord"), "the matching line: {card}");
    client.find(Locator::Css(".card[data-key=\"photos/sign.jpg\"]")).await.unwrap().click().await.unwrap();
    let lines = browser
        .until("the detail's text", "return document.querySelector('#detail[open]') && !document.querySelector('#detail-text').hidden && [...document.querySelectorAll('#detail-text li')].map(l => l.textContent)")
        .await;
    let lines: Vec<String> = lines.as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_lowercase()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("nord") && lines[1].contains("42"), "in reading order: {lines:?}");
    // The matched line's box lies over the first line's ink, on the loaded image
    // (a little larger: the detector's box grows around the letters).
    let geometry = browser
        .until("the matched box over the loaded image", "const i = document.querySelector('#detail-img'); const b = document.querySelector('#boxes .text-box.matched'); if (!i.complete || !i.naturalWidth || !b || !i.src.includes('size=')) return null; const r = i.getBoundingClientRect(), q = b.getBoundingClientRect(); return [(q.left - r.left) / r.width, (q.top - r.top) / r.height, (q.right - r.left) / r.width, (q.bottom - r.top) / r.height, b.textContent, document.querySelectorAll('#boxes .text-box').length]")
        .await;
    let g: Vec<f64> = geometry.as_array().unwrap()[..4].iter().map(|v| v.as_f64().unwrap()).collect();
    let around = |got: f64, ink: f64, outward: f64| (got - ink) * outward >= -0.01 && (got - ink).abs() <= 0.06;
    assert!(around(g[0], drawn[0], -1.0) && around(g[2], drawn[2], 1.0), "across: {g:?}, drawn {drawn:?}");
    assert!(around(g[1], drawn[1], -1.0) && around(g[3], drawn[3], 1.0), "down: {g:?}, drawn {drawn:?}");
    assert!(geometry[4].as_str().unwrap().to_lowercase().contains("nord"), "{geometry}");
    assert_eq!(geometry[5], 2, "a box a line: {geometry}");
    if let Some(path) = std::env::var_os("UI_TEXT_SCREENSHOT") {
        std::fs::write(path, client.screenshot().await.unwrap()).unwrap();
    }
}
