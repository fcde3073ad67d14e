//! Argon2id password hashing on dedicated threads, one per core, with a
//! short queue behind them: a flood of sign-ups or logins is refused
//! (`Error::Busy`) instead of holding tens of MiB per waiting hash until the
//! service runs out of memory.
//!
//! Why dedicated threads rather than tokio's blocking pool: each hash
//! allocates its memory cost (19 MiB) and frees it. Over a flood the pool
//! runs hashes on ever other threads, and every thread's malloc arena keeps
//! the freed blocks: the signup_flood bench measured 851 MiB kept after 300
//! sign-ups (376 MiB on fixed threads still allocating per hash). Each
//! thread now hashes into one block of memory it keeps for its lifetime.

use crate::domain::Password;
use crate::error::Error;
use crate::settings::PasswordSettings;
use argon2::password_hash::{self, Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Semaphore;

/// Hashes that may wait per running one before callers are turned away.
const QUEUE_PER_CORE: usize = 4;

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// A real hash verified when the login names no account, so a wrong
    /// username costs the same time as a wrong password.
    decoy: Arc<String>,
    gate: Arc<Gate>,
}

/// Admission to the hashing threads: `running` permits, and at most
/// `capacity` callers admitted (running or waiting) at once.
struct Gate {
    running: Arc<Semaphore>,
    admitted: AtomicUsize,
    capacity: usize,
    workers: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
}

/// Work for a hashing thread, given the thread's own argon2 memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// `count` threads taking jobs from one queue until its sender is gone.
fn start_workers(count: usize) -> std::sync::mpsc::Sender<Job> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    for n in 0..count {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("password-hash-{n}"))
            .spawn(move || {
                let mut memory = Vec::new();
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(&mut memory),
                        Err(_) => return,
                    }
                }
            });
        if let Err(err) = spawned {
            tracing::error!(%err, "cannot start a password hashing thread");
        }
    }
    tx
}

/// One admitted caller's place; freed when the hash it asked for is done
/// (not when the caller stops waiting: its hash still occupies a thread).
struct Admitted(Arc<Gate>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    fn new(running: usize, queue: usize) -> Self {
        Gate {
            running: Arc::new(Semaphore::new(running)),
            admitted: AtomicUsize::new(0),
            capacity: running + queue,
            workers: std::sync::Mutex::new(start_workers(running)),
        }
    }

    fn admit(self: &Arc<Self>) -> Result<Admitted, Error> {
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("password_hash_refused_total").increment(1);
            return Err(Error::Busy);
        }
        Ok(Admitted(Arc::clone(self)))
    }

    /// Runs `work` on a hashing thread once a running place is free.
    async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut Vec<Block>) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        let admitted = self.admit()?;
        let running = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("hashing gate closed")))?;
        let (done, result) = tokio::sync::oneshot::channel();
        // The place and the running permit travel with the job: a caller
        // that gives up does not free them while its hash still runs, and
        // a hash nobody waits for any more is skipped.
        // Both are freed before the answer goes out, so a caller that got
        // its answer never finds its own place still taken.
        let job: Job = Box::new(move |memory| {
            let outcome = (!done.is_closed()).then(|| work(memory));
            drop((running, admitted));
            if let Some(outcome) = outcome {
                let _ = done.send(outcome);
            }
        });
        let queued = self
            .workers
            .lock()
            .map_err(|_| Error::Internal(anyhow::anyhow!("hashing queue poisoned")))?
            .send(job);
        queued.map_err(|_| Error::Internal(anyhow::anyhow!("no password hashing thread")))?;
        let result = result
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("a hashing thread stopped")))?;
        Ok(result?)
    }
}

impl Hasher {
    pub fn new(config: &PasswordSettings) -> anyhow::Result<Self> {
        let params = Params::new(config.memory_kib, config.iterations, 1, None)
            .map_err(|err| anyhow::anyhow!("invalid argon2 parameters: {err}"))?;
        let decoy = hash_with(&params, "decoy password never matches", &mut Vec::new())?;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Hasher {
            params,
            decoy: Arc::new(decoy),
            gate: Arc::new(Gate::new(cores, cores * QUEUE_PER_CORE)),
        })
    }

    pub async fn hash(&self, password: &Password) -> Result<String, Error> {
        let params = self.params.clone();
        let password = password.expose().to_owned();
        self.gate
            .run(move |memory| hash_with(&params, &password, memory))
            .await
    }

    /// Checks `password` against `stored`, or against the decoy when there
    /// is no account.
    pub async fn verify(&self, password: &str, stored: Option<String>) -> Result<bool, Error> {
        let exists = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.decoy.as_str().to_owned());
        let password = password.to_owned();
        let matches = self
            .gate
            .run(move |memory| verify_with(&stored, &password, memory))
            .await?;
        Ok(exists && matches)
    }
}

/// Argon2id of `password` with a fresh salt, as a PHC string, computed in
/// `memory` (grown to the parameters' size once, then reused).
fn hash_with(params: &Params, password: &str, memory: &mut Vec<Block>) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(&argon, password, &salt, &mut out, memory)?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|err| anyhow::anyhow!("cannot encode salt: {err}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: params
            .try_into()
            .map_err(|err| anyhow::anyhow!("cannot encode parameters: {err}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|err| anyhow::anyhow!("bad output: {err}"))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `stored` (its own algorithm,
/// version and parameters), computed in `memory`; compared in constant time.
fn verify_with(stored: &str, password: &str, memory: &mut Vec<Block>) -> anyhow::Result<bool> {
    let corrupt =
        |err: password_hash::Error| anyhow::anyhow!("stored password hash is corrupt: {err}");
    let parsed = PasswordHash::new(stored).map_err(corrupt)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(corrupt)?;
    let version = Version::try_from(parsed.version.unwrap_or(Version::V0x13.into()))
        .map_err(|err| anyhow::anyhow!("stored password hash is corrupt: {err}"))?;
    let params = Params::try_from(&parsed).map_err(corrupt)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        anyhow::bail!("stored password hash has no salt or no hash");
    };
    let mut salt_bytes = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_bytes).map_err(corrupt)?;
    let mut out = vec![0u8; expected.len()];
    compute(
        &Argon2::new(algorithm, version, params),
        password,
        salt,
        &mut out,
        memory,
    )?;
    // Output's equality is constant-time.
    Ok(Output::new(&out).map_err(corrupt)? == expected)
}

fn compute(
    argon: &Argon2<'_>,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> anyhow::Result<()> {
    let blocks = argon.params().block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    argon
        .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..blocks])
        .map_err(|err| anyhow::anyhow!("cannot hash password: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_turns_callers_away_beyond_its_queue() {
        let gate = Arc::new(Gate::new(1, 2));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(std::sync::Mutex::new(wait));
        let mut running = Vec::new();
        for _ in 0..3 {
            let (gate, wait) = (gate.clone(), wait.clone());
            running.push(tokio::spawn(async move {
                gate.run(move |_| {
                    let _ = wait.lock().map(|wait| wait.recv());
                    Ok(())
                })
                .await
            }));
        }
        messenger_testkit::eventually(std::time::Duration::from_secs(5), || async {
            (gate.admitted.load(Ordering::Acquire) == 3).then_some(())
        })
        .await
        .expect("three admitted");
        assert!(matches!(gate.run(|_| Ok(())).await, Err(Error::Busy)));
        for _ in 0..3 {
            release.send(()).expect("release");
        }
        for task in running {
            assert!(task.await.expect("task").is_ok());
        }
        assert_eq!(gate.admitted.load(Ordering::Acquire), 0);
        assert!(gate.run(|_| Ok(())).await.is_ok(), "room again");
    }
}

#[cfg(test)]
mod phc_tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn hashes_agree_with_the_reference_implementation_both_ways() {
        let params = Params::new(1024, 1, 1, None).expect("params");
        let mut memory = Vec::new();
        let ours = hash_with(&params, "correct horse", &mut memory).expect("hash");
        let parsed = PasswordHash::new(&ours).expect("PHC string");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );

        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"correct horse", &salt)
            .expect("reference hash")
            .to_string();
        assert!(verify_with(&theirs, "correct horse", &mut memory).expect("verify"));
        assert!(!verify_with(&theirs, "wrong", &mut memory).expect("verify"));
        assert!(verify_with("not a hash", "x", &mut memory).is_err());
    }
}
