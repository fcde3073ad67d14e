//! Media load tool: upload throughput of one large file through the gateway
//! against a plain file copy on the same disk in the same run (page-cache
//! copies and a durable one: uploads are fsynced before they are answered), the fleet's
//! peak memory during that upload, and thumbnails/s for 4-megapixel JPEGs.
//!
//!     ./dev infra && cargo bench -p messenger-fleet --bench media -- [MEGABYTES] [IMAGES]
//!
//! The fleet runs as its own process (the `messenger` binary) with local
//! filesystem storage, so its RSS is sampled from /proc every 10 ms while
//! the upload streams.

use image::DynamicImage;
use messenger_testkit::TestEnv;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{Fleet, register, wait_ready};

mod support;

/// Uploads (and durable copies) measured, alternating.
const ROUNDS: usize = 5;

struct Args {
    megabytes: u64,
    images: usize,
}

fn args() -> Args {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse::<u64>().ok());
    let megabytes = args.next().unwrap_or(50);
    let images = args.next().unwrap_or(20) as usize;
    Args { megabytes, images }
}

/// A registered user's way into the fleet.
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// The file uploaded and copied, and the folder the copies go to.
struct Source {
    dir: PathBuf,
    path: PathBuf,
    bytes: Vec<u8>,
}

/// The two single copies of the source, timed once each.
struct Copies {
    kernel: Duration,
    user_space: Duration,
}

/// The alternating rounds, each list sorted, and the fleet's memory.
struct Rounds {
    uploads: Vec<Duration>,
    durable_copies: Vec<Duration>,
    idle: u64,
    peak: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    let env = TestEnv::new().await?;
    let fleet = Fleet::start(&env)?;
    let client = sign_in(&fleet).await?;
    let source = write_source(args.megabytes)?;
    let copies = measure_copies(&source, args.megabytes)?;
    let rounds = measure_uploads(&fleet, &client, &source, args.megabytes).await?;
    let thumbs = measure_thumbnails(&client, args.images).await?;
    report(&args, &copies, &rounds, thumbs);
    drop(fleet);
    let _ = std::fs::remove_dir_all(&source.dir);
    env.cleanup().await?;
    Ok(())
}

async fn sign_in(fleet: &Fleet) -> anyhow::Result<Client> {
    let http = reqwest::Client::new();
    wait_ready(&http, &fleet.base).await?;
    let token = register(&http, &fleet.base, "media_bench").await?;
    Ok(Client {
        http,
        base: fleet.base.clone(),
        token,
    })
}

/// A PDF-looking file of MEGABYTES of incompressible bytes, also written to
/// a fresh folder on the disk the fleet stores media on.
fn write_source(megabytes: u64) -> anyhow::Result<Source> {
    let size = (megabytes * 1024 * 1024) as usize;
    let mut bytes = b"%PDF-1.4\n".to_vec();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    let dir = std::env::temp_dir().join(format!("media-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("source.pdf");
    std::fs::write(&path, &bytes)?;
    Ok(Source { dir, path, bytes })
}

fn measure_copies(source: &Source, megabytes: u64) -> anyhow::Result<Copies> {
    eprintln!("baseline: copying {megabytes} MB on the same disk");
    let copy_started = Instant::now();
    std::fs::copy(&source.path, source.dir.join("copy.pdf"))?;
    let kernel = copy_started.elapsed();
    // The same through user space, 64 KiB at a time (no in-kernel copy).
    let user_space = user_space_copy(&source.path, &source.dir.join("copy2.pdf"), false)?;
    Ok(Copies { kernel, user_space })
}

/// Alternating rounds, so both sides see the same disk weather (a virtual
/// disk's fsync times vary run to run); medians are compared.
async fn measure_uploads(
    fleet: &Fleet,
    client: &Client,
    source: &Source,
    megabytes: u64,
) -> anyhow::Result<Rounds> {
    // Let the fleet settle before its idle size is read.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = fleet.rss()?;
    let sampler = PeakSampler::start(fleet, idle);
    let mut durable_copies = Vec::new();
    let mut uploads = Vec::new();
    for round in 0..ROUNDS {
        durable_copies.push(user_space_copy(
            &source.path,
            &source.dir.join(format!("durable{round}.pdf")),
            true,
        )?);
        eprintln!(
            "uploading {megabytes} MB through the gateway ({}/{ROUNDS})",
            round + 1
        );
        uploads.push(upload_pdf(client, source, round).await?);
    }
    let peak = sampler.stop().await;
    uploads.sort();
    durable_copies.sort();
    Ok(Rounds {
        uploads,
        durable_copies,
        idle,
        peak,
    })
}

/// Uploads the source once, timing the request until it is answered.
async fn upload_pdf(client: &Client, source: &Source, round: usize) -> anyhow::Result<Duration> {
    // Distinct content per round: nothing is deduplicated away. The client
    // side holds the file; what is measured is the fleet.
    let mut bytes = source.bytes.clone();
    bytes[16] = round as u8;
    let upload_started = Instant::now();
    let response = client
        .http
        .post(format!(
            "{}/api/v1/media?filename=big{round}.pdf",
            client.base
        ))
        .bearer_auth(&client.token)
        .header("content-type", "application/pdf")
        .header("content-length", source.bytes.len().to_string())
        .body(bytes)
        .send()
        .await?;
    let elapsed = upload_started.elapsed();
    let status = response.status();
    anyhow::ensure!(
        status.as_u16() == 201,
        "upload answered {status}: {}",
        response.text().await?
    );
    Ok(elapsed)
}

/// The fleet's peak resident memory, read from /proc every 10 ms until
/// stopped: a streaming upload's buffers live only while it runs.
struct PeakSampler {
    peak: Arc<AtomicU64>,
    sampling: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakSampler {
    fn start(fleet: &Fleet, idle: u64) -> PeakSampler {
        let peak = Arc::new(AtomicU64::new(idle));
        let sampling = Arc::new(AtomicBool::new(true));
        let task = {
            let (peak, sampling) = (peak.clone(), sampling.clone());
            let pid = fleet.child.id();
            tokio::spawn(async move {
                while sampling.load(Ordering::Relaxed) {
                    if let Some(rss) = messenger_testkit::resident_memory(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        PeakSampler {
            peak,
            sampling,
            task,
        }
    }

    async fn stop(self) -> u64 {
        self.sampling.store(false, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

/// Time from the first of `images` 4-megapixel JPEG uploads until every one
/// is processed (stripped and thumbnailed).
async fn measure_thumbnails(client: &Client, images: usize) -> anyhow::Result<Duration> {
    eprintln!("thumbnails: uploading {images} 4-megapixel JPEGs");
    let jpeg = four_megapixel_jpeg()?;
    let thumbs_started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..images {
        // Distinct content per upload, so none is deduplicated away.
        let mut bytes = jpeg.clone();
        let len = bytes.len();
        bytes[len - 3] = (i % 251) as u8;
        let uploaded: serde_json::Value = client
            .http
            .post(format!(
                "{}/api/v1/media?filename=photo{i}.jpg",
                client.base
            ))
            .bearer_auth(&client.token)
            .header("content-type", "image/jpeg")
            .body(bytes)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ids.push(support::text(&uploaded["id"])?);
    }
    for id in &ids {
        wait_processed(client, id, thumbs_started).await?;
    }
    Ok(thumbs_started.elapsed())
}

fn four_megapixel_jpeg() -> anyhow::Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    let image = image::RgbImage::from_fn(2304, 1728, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 239) as u8])
    });
    DynamicImage::ImageRgb8(image).write_to(&mut out, image::ImageFormat::Jpeg)?;
    Ok(out.into_inner())
}

/// Polls the upload `id` until it is ready; five minutes from `started` at
/// most.
async fn wait_processed(client: &Client, id: &str, started: Instant) -> anyhow::Result<()> {
    loop {
        let info: serde_json::Value = client
            .http
            .get(format!("{}/api/v1/media/{id}/info", client.base))
            .bearer_auth(&client.token)
            .send()
            .await?
            .json()
            .await?;
        if info["state"] == "ready" {
            return Ok(());
        }
        anyhow::ensure!(info["state"] == "pending", "processing failed: {info}");
        anyhow::ensure!(started.elapsed() < Duration::from_secs(300), "too slow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn report(args: &Args, copies: &Copies, rounds: &Rounds, thumbs: Duration) {
    let Args { megabytes, images } = *args;
    let (uploads, durable_copies) = (&rounds.uploads, &rounds.durable_copies);
    let upload = median(uploads);
    let durable = median(durable_copies);
    let (copy, streamed_copy) = (copies.kernel, copies.user_space);
    let (idle, peak) = (rounds.idle, rounds.peak);
    let mb = megabytes as f64;
    println!("| measurement | value |");
    println!("|---|---|");
    println!(
        "| upload of {megabytes} MB through the gateway, fsynced before 201 (median of {ROUNDS}; range) | {:.2} s = {:.0} MB/s ({:.0}–{:.0} MB/s) |",
        upload.as_secs_f64(),
        mb / upload.as_secs_f64(),
        mb / uploads[ROUNDS - 1].as_secs_f64(),
        mb / uploads[0].as_secs_f64()
    );
    println!(
        "| baseline: file copy on the same disk | {:.2} s = {:.0} MB/s |",
        copy.as_secs_f64(),
        mb / copy.as_secs_f64()
    );
    println!(
        "| baseline: read + write copy through user space, 64 KiB buffers | {:.2} s = {:.0} MB/s |",
        streamed_copy.as_secs_f64(),
        mb / streamed_copy.as_secs_f64()
    );
    println!(
        "| baseline: the user-space copy made durable, fsync file + directory (median of {ROUNDS}; range) | {:.2} s = {:.0} MB/s ({:.0}–{:.0} MB/s) |",
        durable.as_secs_f64(),
        mb / durable.as_secs_f64(),
        mb / durable_copies[ROUNDS - 1].as_secs_f64(),
        mb / durable_copies[0].as_secs_f64()
    );
    println!(
        "| upload rate as a share of the copy rates (durable / kernel / user space) | {:.0} % / {:.0} % / {:.0} % |",
        100.0 * durable.as_secs_f64() / upload.as_secs_f64(),
        100.0 * copy.as_secs_f64() / upload.as_secs_f64(),
        100.0 * streamed_copy.as_secs_f64() / upload.as_secs_f64()
    );
    println!(
        "| fleet RSS idle → peak during the uploads | {:.1} MiB → {:.1} MiB (+{:.1} MiB) |",
        idle as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        peak.saturating_sub(idle) as f64 / 1048576.0
    );
    println!(
        "| {images} 4-megapixel JPEGs uploaded → ready (stripped + 2 thumbnails) | {:.2} s = {:.1} images/s |",
        thumbs.as_secs_f64(),
        images as f64 / thumbs.as_secs_f64()
    );
}

/// Copies `source` through user space, 64 KiB at a time; `durable` also
/// syncs the copy and its directory, as an upload is before it is answered.
fn user_space_copy(
    source: &std::path::Path,
    target: &std::path::Path,
    durable: bool,
) -> std::io::Result<Duration> {
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut from = std::fs::File::open(source)?;
    let mut to = std::fs::File::create(target)?;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        to.write_all(&buffer[..n])?;
    }
    to.flush()?;
    if durable {
        to.sync_all()?;
        if let Some(dir) = target.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
    }
    Ok(started.elapsed())
}

/// The middle of `times`, which are sorted.
fn median(times: &[Duration]) -> Duration {
    times[times.len() / 2]
}
