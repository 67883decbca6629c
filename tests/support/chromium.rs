//! A real headless Chromium (Debian's `chromium`, installed by
//! scripts/install-test-deps) for the HTML report: the DOM it builds from a
//! file, and a screenshot decoded to check that something was drawn. Each
//! call is one short-lived Chromium process with its own throwaway profile,
//! so calls never share state.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::daemons::which;

/// The page size of the screenshots: wide enough for the timeline.
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 2000;

/// Run Chromium on `page`; its stdout. Output goes to files, not pipes, so
/// a large DOM never blocks it while the deadline is watched.
#[track_caller]
fn chromium(args: &[String], page: &Path) -> String {
    let bin = which("chromium").unwrap_or_else(|| panic!("`chromium` is not installed: run scripts/install-test-deps"));
    let profile = tempfile::tempdir().expect("temp dir");
    let (out, err) = (profile.path().join("stdout"), profile.path().join("stderr"));
    let mut child = Command::new(bin)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"])
        .arg(format!("--user-data-dir={}", profile.path().join("profile").display()))
        // No network: the page must need nothing from anywhere.
        .arg("--proxy-server=127.0.0.1:9")
        .args(args)
        .arg(format!("file://{}", page.display()))
        .env("HOME", profile.path())
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(File::create(&err).expect("stderr file"))
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish with {} in 60 s", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(status.success(), "chromium failed on {}:\n{stderr}", page.display());
    String::from_utf8_lossy(&std::fs::read(&out).expect("chromium's output")).into_owned()
}

/// The DOM after Chromium parsed and laid out `page`, serialised.
#[track_caller]
pub fn dump_dom(page: &Path) -> String {
    chromium(&["--dump-dom".into()], page)
}

/// A screenshot of `page` written to `png`.
#[track_caller]
pub fn screenshot(page: &Path, png: &Path) {
    let args = [format!("--screenshot={}", png.display()), format!("--window-size={WIDTH},{HEIGHT}")];
    chromium(&args, page);
    assert!(png.exists(), "chromium wrote no screenshot of {}", page.display());
}

/// What a screenshot shows, from its decoded pixels.
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    /// Distinct RGB colours.
    pub colours: usize,
    /// Share of pixels that are not the background (the top-left pixel's colour).
    pub inked: f64,
}

/// Decode a PNG and count its colours and the pixels off the background.
#[track_caller]
pub fn pixels(png: &Path) -> Pixels {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).expect("open the screenshot")));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a PNG of a sane size")];
    let info = reader.next_frame(&mut buf).expect("PNG pixels");
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "an 8-bit screenshot");
    let rgb: Vec<[u8; 3]> = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| if channels >= 3 { [p[0], p[1], p[2]] } else { [p[0], p[0], p[0]] })
        .collect();
    let background = rgb[0];
    let inked = rgb.iter().filter(|p| **p != background).count();
    let colours: std::collections::HashSet<[u8; 3]> = rgb.iter().copied().collect();
    Pixels { width: info.width, height: info.height, colours: colours.len(), inked: inked as f64 / rgb.len() as f64 }
}
