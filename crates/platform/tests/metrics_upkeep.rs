//! The metrics recorder folds histogram samples into their buckets on its
//! own (not only when scraped), and the folding loses none of them.

use messenger_platform::telemetry::{METRICS_UPKEEP, prometheus};
use std::time::Duration;

#[test]
fn histogram_samples_are_kept_across_upkeep() {
    let handle = prometheus();
    for n in 0..1000 {
        metrics::histogram!("upkeep_test_seconds").record(f64::from(n % 10) / 1000.0);
    }
    // Let at least one upkeep run before the first render.
    std::thread::sleep(METRICS_UPKEEP + Duration::from_secs(1));
    let text = handle.render();
    assert!(
        text.lines()
            .any(|line| line == "upkeep_test_seconds_count 1000"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|line| line == "upkeep_test_seconds_bucket{le=\"0.005\"} 600"),
        "{text}"
    );
}
