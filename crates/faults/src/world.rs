//! The cast: users, groups and channels created through the public API,
//! and who sends where and who listens to what.

use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone)]
pub struct Account {
    pub name: String,
    pub id: String,
    pub token: String,
}

pub struct Sender {
    pub account: Account,
    pub channels: Vec<String>,
}

#[derive(Clone)]
pub struct Receiver {
    pub account: Account,
    /// Index into the gateways it connects to first.
    pub gateway: usize,
    /// Rooms it joins (outsiders try every room and must be refused).
    pub groups: Vec<String>,
    /// Channels whose messages it must end up with; empty for outsiders.
    pub channels: Vec<String>,
    pub outsider: bool,
}

pub struct World {
    pub senders: Vec<Sender>,
    pub receivers: Vec<Receiver>,
    /// Every channel with a member allowed to read its whole history.
    pub channels: BTreeMap<String, Account>,
}

/// A JSON client for the public API that retries nothing: callers decide.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
}

impl Api {
    pub fn new() -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(8)
            .build()?;
        Ok(Api { http })
    }

    pub async fn call(
        &self,
        method: Method,
        url: String,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// A setup call that must succeed with `expected`.
    async fn must(
        &self,
        method: Method,
        url: String,
        token: Option<&str>,
        body: Value,
        expected: StatusCode,
    ) -> anyhow::Result<Value> {
        let (status, reply) = self
            .call(method, url.clone(), token, Some(body))
            .await
            .with_context(|| format!("calling {url}"))?;
        anyhow::ensure!(status == expected, "{url}: {status} {reply}");
        Ok(reply)
    }

    async fn register(&self, base: &str, name: &str) -> anyhow::Result<Account> {
        let auth = self
            .must(
                Method::POST,
                format!("{base}/api/v1/auth/register"),
                None,
                json!({
                    "username": name,
                    "email": format!("{name}@faults.example"),
                    "display_name": name,
                    "password": "ledger password",
                }),
                StatusCode::CREATED,
            )
            .await?;
        Ok(Account {
            name: name.to_owned(),
            id: text(&auth["user"]["id"])?,
            token: text(&auth["access_token"])?,
        })
    }

    async fn group(&self, base: &str, owner: &Account, name: &str) -> anyhow::Result<Value> {
        self.must(
            Method::POST,
            format!("{base}/api/v1/groups"),
            Some(&owner.token),
            json!({"name": name, "visibility": "private"}),
            StatusCode::CREATED,
        )
        .await
    }

    async fn channel(
        &self,
        base: &str,
        owner: &Account,
        group: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        let channel = self
            .must(
                Method::POST,
                format!("{base}/api/v1/groups/{group}/channels"),
                Some(&owner.token),
                json!({"name": name}),
                StatusCode::CREATED,
            )
            .await?;
        text(&channel["id"])
    }

    async fn invite(
        &self,
        base: &str,
        owner: &Account,
        group: &str,
        member: &Account,
    ) -> anyhow::Result<()> {
        self.must(
            Method::POST,
            format!("{base}/api/v1/groups/{group}/members"),
            Some(&owner.token),
            json!({"user_id": member.id}),
            StatusCode::CREATED,
        )
        .await
        .map(drop)
    }
}

fn text(value: &Value) -> anyhow::Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("expected a string, got {value}"))
}

/// Two private groups: "north" with two channels, "south" with one.
/// Senders: ann (north), bob (both), cat (south). Receivers split across
/// both gateways: dan (north), eve and fay (both), gus (south); two
/// outsiders, one per gateway, who belong to neither.
pub async fn build(api: &Api, base: &str) -> anyhow::Result<World> {
    let accounts = Accounts::register(api, base).await?;
    let (ann, bob, cat) = (
        accounts.get("ann")?,
        accounts.get("bob")?,
        accounts.get("cat")?,
    );
    let groups = Groups::create(api, base, &accounts, &ann, &cat).await?;
    let both: Vec<String> = groups
        .north_channels
        .iter()
        .chain(&groups.south_channels)
        .cloned()
        .collect();
    let senders = vec![
        Sender {
            account: ann.clone(),
            channels: groups.north_channels.clone(),
        },
        Sender {
            account: bob.clone(),
            channels: both.clone(),
        },
        Sender {
            account: cat.clone(),
            channels: groups.south_channels.clone(),
        },
    ];
    let receivers = receivers(&accounts, &groups, &both)?;
    let mut channels = BTreeMap::new();
    for channel in &both {
        channels.insert(channel.clone(), bob.clone());
    }
    Ok(World {
        senders,
        receivers,
        channels,
    })
}

/// Everyone in the cast, by name.
struct Accounts(BTreeMap<&'static str, Account>);

impl Accounts {
    async fn register(api: &Api, base: &str) -> anyhow::Result<Accounts> {
        let mut accounts = BTreeMap::new();
        for name in [
            "ann", "bob", "cat", "dan", "eve", "fay", "gus", "xan", "xia",
        ] {
            accounts.insert(name, api.register(base, name).await?);
        }
        Ok(Accounts(accounts))
    }

    fn get(&self, name: &str) -> anyhow::Result<Account> {
        self.0
            .get(name)
            .cloned()
            .with_context(|| format!("no account {name}"))
    }
}

/// The two groups, their channels and members.
struct Groups {
    north_id: String,
    north_channels: Vec<String>,
    south_id: String,
    south_channels: Vec<String>,
}

impl Groups {
    /// North (ann's) and South (cat's), with their members invited.
    async fn create(
        api: &Api,
        base: &str,
        accounts: &Accounts,
        ann: &Account,
        cat: &Account,
    ) -> anyhow::Result<Groups> {
        let north = api.group(base, ann, "North").await?;
        let north_id = text(&north["id"])?;
        let north_channels = vec![
            text(&north["default_channel_id"])?,
            api.channel(base, ann, &north_id, "north-two").await?,
        ];
        let south = api.group(base, cat, "South").await?;
        let south_id = text(&south["id"])?;
        let south_channels = vec![text(&south["default_channel_id"])?];
        for name in ["bob", "dan", "eve", "fay"] {
            api.invite(base, ann, &north_id, &accounts.get(name)?)
                .await?;
        }
        for name in ["bob", "eve", "fay", "gus"] {
            api.invite(base, cat, &south_id, &accounts.get(name)?)
                .await?;
        }
        Ok(Groups {
            north_id,
            north_channels,
            south_id,
            south_channels,
        })
    }
}

/// Members who must get their channels' messages, and outsiders who must
/// get none; `both` is every channel of both groups.
fn receivers(
    accounts: &Accounts,
    groups: &Groups,
    both: &[String],
) -> anyhow::Result<Vec<Receiver>> {
    let member = |name: &str, gateway, rooms: Vec<&String>, channels: &[String]| {
        Ok::<_, anyhow::Error>(Receiver {
            account: accounts.get(name)?,
            gateway,
            groups: rooms.into_iter().cloned().collect(),
            channels: channels.to_vec(),
            outsider: false,
        })
    };
    let (north_id, south_id) = (&groups.north_id, &groups.south_id);
    // Outsiders ask for every group and channel room, and must get none.
    let every_room: Vec<String> = [north_id.clone(), south_id.clone()]
        .into_iter()
        .chain(both.iter().cloned())
        .collect();
    let outsider = |name: &str, gateway| {
        Ok::<_, anyhow::Error>(Receiver {
            account: accounts.get(name)?,
            gateway,
            groups: every_room.clone(),
            channels: Vec::new(),
            outsider: true,
        })
    };
    Ok(vec![
        member("dan", 0, vec![north_id], &groups.north_channels)?,
        member("eve", 1, vec![north_id, south_id], both)?,
        member("fay", 0, vec![north_id, south_id], both)?,
        member("gus", 1, vec![south_id], &groups.south_channels)?,
        outsider("xan", 0)?,
        outsider("xia", 1)?,
    ])
}
