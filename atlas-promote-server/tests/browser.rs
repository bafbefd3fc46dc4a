//! The status page in a real browser: headless Chromium loads the board and
//! a candidate's page from the server (on the in-memory backends, a
//! candidate blocked in staging), and the DOM it rendered shows each
//! environment's live commit and the blocker sentences.
//!
//! Without Chromium on the machine the test says it is skipped; with
//! `CI=true` it must run (`.ci/run` installs Debian's `chromium`). Set
//! `ATLAS_SCREENSHOT_DIR` to also save a screenshot of each page there.

mod operator_world;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use atlas_promote_server::ReadAccess;
use operator_world::{start, world};

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("ATLAS_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but there is no Chromium at {}: .ci/run installs it (apt-get install -y chromium)",
            path.display()
        );
    }
    eprintln!("skipped: no Chromium at {} (install Debian's chromium, or set ATLAS_CHROMIUM)", path.display());
    None
}

/// Run headless Chromium with `args` and give what it printed, killing it after a minute.
async fn headless(chromium: PathBuf, args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let profile = std::env::temp_dir().join(format!("atlas-chromium-{}-{}", std::process::id(), rand_suffix()));
        let mut child = Command::new(&chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", chromium.display()));
        let started = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("chromium {args:?} did not finish within a minute");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut out = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
        let _ = std::fs::remove_dir_all(&profile);
        out
    })
    .await
    .unwrap()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// The part of `dom` from `start` up to the next `end` after it.
fn section<'a>(dom: &'a str, start: &str, end: &str) -> &'a str {
    let from = dom.find(start).unwrap_or_else(|| panic!("{start} not in the page"));
    let to = dom[from..].find(end).map_or(dom.len(), |i| from + i);
    &dom[from..to]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_each_environments_live_commit_and_the_blocker_sentence() {
    let Some(chromium) = chromium() else { return };
    let w = world(ReadAccess::Open);
    w.c1_blocked_in_staging_c2_in_dev().await;
    // Read-only, so a second server on the same engine may show it, in the zone of the people reading it.
    let server = atlas_promote_server::Server::builder(w.promoter.clone())
        .with_time_zone("Europe/Berlin".parse().unwrap())
        .build();
    let running = start(&server).await;

    let dom = headless(chromium.clone(), vec!["--dump-dom".into(), format!("{}/", running.url)]).await;
    assert!(dom.contains("<main>"), "chromium rendered no page:\n{dom}");
    let dev = section(&dom, r#"id="env-dev""#, r#"id="env-staging""#);
    let staging = section(&dom, r#"id="env-staging""#, r#"id="env-prod""#);
    let prod = section(&dom, r#"id="env-prod""#, "</article>");
    assert!(dev.contains(">c2</a>"), "dev shows c2 live:\n{dev}");
    assert!(staging.contains(">c1</a>"), "staging shows c1 live:\n{staging}");
    assert!(prod.contains("nothing yet"), "prod shows nothing live:\n{prod}");
    let decision = w.promoter.plan("c1").await.unwrap().steps[0].decision.clone().unwrap();
    let approvals = decision.blockers.iter().find(|b| b.kind() == "approvals_missing").expect("prod needs approvals");
    let sentence = approvals.to_string();
    assert!(sentence.contains("product-owner") && sentence.contains("to enter prod"), "{sentence}");
    let c1 = section(&dom, r#"id="cand-c1""#, "</article>");
    assert!(c1.contains(&sentence), "the board shows c1's blocker '{sentence}':\n{c1}");

    let page = format!("{}/promotions/c1", running.url);
    let dom = headless(chromium.clone(), vec!["--dump-dom".into(), page.clone()]).await;
    assert!(dom.contains(&sentence), "c1's page shows '{sentence}':\n{dom}");
    assert!(dom.contains("c1 deployed to staging"), "c1's timeline:\n{dom}");

    if let Some(dir) = std::env::var_os("ATLAS_SCREENSHOT_DIR").map(PathBuf::from) {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, url) in [("board.png", format!("{}/", running.url)), ("candidate.png", page)] {
            let path = dir.join(name);
            let args = vec![format!("--screenshot={}", path.display()), "--window-size=1280,1500".into(), url];
            headless(chromium.clone(), args).await;
            assert!(path.exists(), "no screenshot at {}", path.display());
        }
    }
}
