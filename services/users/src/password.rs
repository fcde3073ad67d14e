//! Argon2id password hashing, off the async runtime's worker threads, at
//! most one hash per core at a time and a short queue behind them: a flood
//! of sign-ups or logins is refused (`Error::Busy`) instead of holding
//! tens of MiB per waiting hash until the service runs out of memory.

use crate::domain::Password;
use crate::error::Error;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use messenger_platform::config::PasswordConfig;
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
    running: Semaphore,
    admitted: AtomicUsize,
    capacity: usize,
}

/// One admitted caller; leaving (by any path) frees its place.
struct Admitted<'a>(&'a Gate);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    fn new(running: usize, queue: usize) -> Self {
        Gate {
            running: Semaphore::new(running),
            admitted: AtomicUsize::new(0),
            capacity: running + queue,
        }
    }

    fn admit(&self) -> Result<Admitted<'_>, Error> {
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("password_hash_refused_total").increment(1);
            return Err(Error::Busy);
        }
        Ok(Admitted(self))
    }

    /// Runs `work` on a blocking thread once a running place is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        let _admitted = self.admit()?;
        let _running = self
            .running
            .acquire()
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("hashing gate closed")))?;
        let result = tokio::task::spawn_blocking(work)
            .await
            .map_err(|err| Error::Internal(err.into()))?;
        Ok(result?)
    }
}

impl Hasher {
    pub fn new(config: &PasswordConfig) -> anyhow::Result<Self> {
        let params = Params::new(config.memory_kib, config.iterations, 1, None)
            .map_err(|err| anyhow::anyhow!("invalid argon2 parameters: {err}"))?;
        let decoy = hash_with(&params, "decoy password never matches")?;
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
        self.gate.run(move || hash_with(&params, &password)).await
    }

    /// Checks `password` against `stored`, or against the decoy when there
    /// is no account.
    pub async fn verify(&self, password: &str, stored: Option<String>) -> Result<bool, Error> {
        let exists = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.decoy.as_str().to_owned());
        let password = password.to_owned();
        let matches = self
            .gate
            .run(move || {
                let parsed = PasswordHash::new(&stored)
                    .map_err(|err| anyhow::anyhow!("stored password hash is corrupt: {err}"))?;
                Ok(Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok())
            })
            .await?;
        Ok(exists && matches)
    }
}

fn hash_with(params: &Params, password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|err| anyhow::anyhow!("cannot encode salt: {err}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    Ok(argon
        .hash_password(password.as_bytes(), &salt)
        .map_err(|err| anyhow::anyhow!("cannot hash password: {err}"))?
        .to_string())
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
                gate.run(move || {
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
        assert!(matches!(gate.run(|| Ok(())).await, Err(Error::Busy)));
        for _ in 0..3 {
            release.send(()).expect("release");
        }
        for task in running {
            assert!(task.await.expect("task").is_ok());
        }
        assert_eq!(gate.admitted.load(Ordering::Acquire), 0);
        assert!(gate.run(|| Ok(())).await.is_ok(), "room again");
    }
}
