//! The web app as a phone installs it: its manifest, icons, favicon and service worker.
use pawpost_testkit::server as common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::PathBuf;

/// The web app's folder in the repository.
fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

/// Fetches `path`, expecting 200, and returns its content type, cache header and body.
async fn fetch(server: &TestServer, path: &str) -> (String, String, Vec<u8>) {
    let response = reqwest::get(server.url(path)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (content_type, cache) = (header("content-type"), header("cache-control"));
    (
        content_type,
        cache,
        response.bytes().await.unwrap().to_vec(),
    )
}

/// The width and height a PNG's header gives.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(png.get(..8), Some(&b"\x89PNG\r\n\x1a\n"[..]), "not a PNG");
    let word = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

#[tokio::test]
async fn the_manifest_names_the_app_and_its_icons_are_served() {
    let server = TestServer::start().await;
    let (content_type, _, body) = fetch(&server, "/manifest.webmanifest").await;
    assert_eq!(content_type, "application/manifest+json");
    let manifest: Value = serde_json::from_slice(&body).expect("the manifest is JSON");
    assert_eq!(manifest["name"], "pawpost");
    assert!(!manifest["short_name"].as_str().unwrap().is_empty());
    assert!(!manifest["description"].as_str().unwrap().is_empty());
    assert_eq!(manifest["start_url"], "/");
    assert_eq!(manifest["scope"], "/");
    assert_eq!(manifest["display"], "standalone");
    let css = std::fs::read_to_string(web_dir().join("css/app.css")).unwrap();
    for colour in ["theme_color", "background_color"] {
        let value = manifest[colour].as_str().unwrap();
        assert!(css.contains(value), "{colour} {value} is not in app.css");
    }

    let icons = manifest["icons"].as_array().unwrap();
    let mut png_sizes = Vec::new();
    for icon in icons {
        let src = icon["src"].as_str().unwrap();
        let file = web_dir().join(src.strip_prefix('/').expect("an absolute path"));
        let on_disk = std::fs::read(&file).unwrap_or_else(|e| panic!("{src}: {e}"));
        let (content_type, _, served) = fetch(&server, src).await;
        assert_eq!(content_type, icon["type"].as_str().unwrap(), "{src}");
        assert_eq!(served, on_disk, "{src}");
        let sizes = icon["sizes"].as_str().unwrap();
        if content_type == "image/png" {
            let (width, height) = png_size(&served);
            assert_eq!(sizes, format!("{width}x{height}"), "{src}");
            png_sizes.push(width);
        }
    }
    png_sizes.sort_unstable();
    assert_eq!(png_sizes, [192, 512]);
    assert!(icons.iter().any(|i| i["type"] == "image/svg+xml"));
}

#[tokio::test]
async fn the_page_links_the_manifest_and_icons_and_the_favicon_is_served() {
    let server = TestServer::start().await;
    let (_, _, page) = fetch(&server, "/").await;
    let page = String::from_utf8(page).unwrap();
    for link in [
        r#"<link rel="manifest" href="/manifest.webmanifest">"#,
        r##"<meta name="theme-color" content="#a4462b">"##,
        r#"<link rel="apple-touch-icon" href="/icons/icon-192.png">"#,
        r#"<meta name="description""#,
        r#"<link rel="icon" href="/icons/icon.svg" type="image/svg+xml">"#,
        r#"<link rel="icon" href="/favicon.ico""#,
    ] {
        assert!(page.contains(link), "{link} missing from index.html");
    }
    let (content_type, _, icon) = fetch(&server, "/favicon.ico").await;
    assert_eq!(content_type, "image/x-icon");
    assert_eq!(
        icon,
        std::fs::read(web_dir().join("icons/favicon.ico")).unwrap()
    );
    // An ICO file: reserved 0, type 1 (icon), then how many images.
    assert_eq!(icon.get(..4), Some(&[0, 0, 1, 0][..]));
}

#[tokio::test]
async fn the_service_worker_always_revalidates_and_lists_the_apps_files() {
    let server = TestServer::start().await;
    let response = reqwest::get(server.url("/sw.js")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // At the root, its scope is the whole app: no Service-Worker-Allowed is needed.
    assert!(response.headers().get("service-worker-allowed").is_none());
    let (content_type, cache, body) = fetch(&server, "/sw.js").await;
    assert_eq!(content_type, "text/javascript");
    assert_eq!(cache, "no-cache");
    let source = String::from_utf8(body).unwrap();
    let build: Value = source
        .lines()
        .find_map(|line| line.strip_prefix("const BUILD = "))
        .and_then(|rest| rest.strip_suffix(';'))
        .map(|json| serde_json::from_str(json).expect("BUILD is JSON"))
        .expect("the BUILD line");
    assert_ne!(build["version"], "unbuilt");
    // Every file it keeps is served as it is listed, and none is under /api/.
    for file in build["files"].as_array().unwrap() {
        let file = file.as_str().unwrap();
        assert!(!file.starts_with("/api/"), "{file}");
        let response = reqwest::get(server.url(file)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{file}");
    }
}
