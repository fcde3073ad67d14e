//! A connection's rooms and the client frames that manage them: joining,
//! leaving, resuming, delivering in order with gaps filled from the room
//! logs, and dropping rooms the user may no longer read.

use super::{Closing, Connection, Joined, Outgoing, RecentEvents};
use crate::realtime::frames::{self, ClientFrame, close};
use crate::realtime::hub::{Published, Signal};
use crate::realtime::rooms::Room;
use crate::realtime::store::Logged;
use messenger_platform::auth::Principal;
use messenger_platform::identity::{self, UserCall};
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

impl<W: Outgoing> Connection<W> {
    /// The socket's user with its latest token, for calls made for it.
    fn as_user(&self) -> Arc<UserCall> {
        Arc::new(UserCall {
            principal: Principal {
                user_id: self.user,
                session_id: self.session,
            },
            token: self.token.clone(),
        })
    }

    /// (group, channel, is direct) for every conversation the user may read.
    pub(super) async fn readable(&self) -> Vec<(Uuid, Uuid, bool)> {
        let asked = self.realtime.access.readable(self.user);
        match identity::scope(self.as_user(), asked).await {
            Ok(readable) => readable
                .iter()
                .map(|c| (c.group, c.channel, c.direct))
                .collect(),
            Err(status) => {
                tracing::warn!(%status, "cannot list readable conversations");
                Vec::new()
            }
        }
    }

    pub(super) fn positions(&self) -> Value {
        let map: serde_json::Map<String, Value> = self
            .rooms
            .iter()
            .map(|(room, joined)| (room.id().to_string(), Value::from(joined.last_seq)))
            .collect();
        Value::Object(map)
    }

    /// Routes the room here, then reads its position: frames numbered
    /// after that position arrive live.
    pub(super) async fn subscribe(&mut self, room: Room, group: Option<Uuid>) -> u64 {
        if let Some(joined) = self.rooms.get(&room) {
            return joined.last_seq;
        }
        self.realtime.hub.join(self.id, room, group).await;
        let seq = self.realtime.store.current_seq(room).await.unwrap_or(0);
        self.rooms.insert(
            room,
            Joined {
                last_seq: seq,
                group,
                recent: RecentEvents::default(),
            },
        );
        seq
    }

    pub(super) async fn unsubscribe(&mut self, room: Room) {
        if self.rooms.remove(&room).is_some() {
            self.realtime.hub.leave(self.id, room).await;
        }
    }

    /// May the user read `conversation` (a group or channel id)? Returns
    /// the group and, for a channel, the channel.
    pub(super) async fn authorize(
        &self,
        conversation: Uuid,
    ) -> Result<Option<(Uuid, Option<Uuid>)>, Closing> {
        let asked = self.realtime.access.authorize_read(self.user, conversation);
        match identity::scope(self.as_user(), asked).await {
            Ok(grant) => Ok(grant),
            Err(status) => {
                tracing::warn!(%status, "authorization unavailable");
                Ok(None)
            }
        }
    }

    pub(super) async fn on_client_frame(
        &mut self,
        text: &str,
        answered_beats: &mut u64,
    ) -> Result<(), Closing> {
        let frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(reason) => return self.send(&frames::error("invalid_frame", &reason)).await,
        };
        match frame {
            ClientFrame::Auth { token } => match self.realtime.tokens.verify(&token).await {
                Ok((principal, _))
                    if principal.user_id == self.user
                        && self
                            .realtime
                            .tokens
                            .deny_list()
                            .is_revoked(principal.session_id)
                            .await =>
                {
                    self.send(&frames::error(
                        "session_revoked",
                        "the token's session has ended; sign in again",
                    ))
                    .await
                }
                Ok((principal, expires_at)) if principal.user_id == self.user => {
                    if principal.session_id != self.session {
                        self.realtime
                            .hub
                            .move_session(self.id, self.session, principal.session_id);
                        self.session = principal.session_id;
                    }
                    self.expires_at = expires_at;
                    self.token = token;
                    self.send(&frames::control(
                        "auth_ok",
                        json!({"expires_at": expires_at}),
                    ))
                    .await
                }
                Ok(_) => {
                    self.send(&frames::error(
                        "invalid_token",
                        "the token is another user's",
                    ))
                    .await
                }
                Err(err) => {
                    self.send(&frames::error("invalid_token", &err.to_string()))
                        .await
                }
            },
            ClientFrame::JoinRoom { room_id } => self.join(room_id).await,
            ClientFrame::LeaveRoom { room_id } => {
                let leaving: Vec<Room> = self
                    .rooms
                    .iter()
                    .filter(|(room, joined)| room.id() == room_id || joined.group == Some(room_id))
                    .map(|(room, _)| *room)
                    .filter(|room| *room != Room::User(self.user))
                    .collect();
                for room in leaving {
                    self.unsubscribe(room).await;
                }
                self.send(&frames::control(
                    "room_left",
                    json!({"room_id": room_id, "reason": "left"}),
                ))
                .await
            }
            ClientFrame::Typing { room_id } => self.typing(room_id).await,
            ClientFrame::Ping { data } => self.send(&frames::control("pong", data)).await,
            ClientFrame::Pong { n } => {
                *answered_beats = (*answered_beats).max(n);
                Ok(())
            }
            ClientFrame::Presence { away } => self.set_presence(away).await,
            ClientFrame::Resume { rooms } => {
                if rooms.len() > self.realtime.settings.max_rooms_per_socket {
                    return self.too_many_rooms().await;
                }
                for (room_id, last_seq) in rooms {
                    self.resume(room_id, last_seq).await?;
                }
                Ok(())
            }
        }
    }

    /// Joins a group (its own room and every channel the user may read in
    /// it) or one channel.
    /// The error frame for a join or resume past `WS_MAX_ROOMS_PER_SOCKET`.
    async fn too_many_rooms(&mut self) -> Result<(), Closing> {
        let max = self.realtime.settings.max_rooms_per_socket;
        self.send(&frames::error(
            "too_many_rooms",
            &format!("a socket follows at most {max} rooms; leave some first"),
        ))
        .await
    }

    /// Whether following `room` would pass `WS_MAX_ROOMS_PER_SOCKET`.
    fn over_room_cap(&self, rooms: &[Room]) -> bool {
        let new = rooms
            .iter()
            .filter(|room| !self.rooms.contains_key(room))
            .count();
        self.rooms.len() + new > self.realtime.settings.max_rooms_per_socket
    }

    pub(super) async fn join(&mut self, room_id: Uuid) -> Result<(), Closing> {
        if self.over_room_cap(&[Room::Conversation(room_id)]) {
            return self.too_many_rooms().await;
        }
        let Some((group, channel)) = self.authorize(room_id).await? else {
            return self
                .send(&frames::error(
                    "not_found",
                    &format!("no room {room_id} you may join"),
                ))
                .await;
        };
        let mut positions = serde_json::Map::new();
        match channel {
            Some(channel) => {
                let seq = self
                    .subscribe(Room::Conversation(channel), Some(group))
                    .await;
                positions.insert(channel.to_string(), seq.into());
            }
            None => {
                let readable = self.readable().await;
                let mut rooms = vec![Room::Conversation(group)];
                rooms.extend(
                    readable
                        .iter()
                        .filter(|(in_group, _, _)| *in_group == group)
                        .map(|(_, channel, _)| Room::Conversation(*channel)),
                );
                if self.over_room_cap(&rooms) {
                    return self.too_many_rooms().await;
                }
                let seq = self.subscribe(Room::Conversation(group), Some(group)).await;
                positions.insert(group.to_string(), seq.into());
                for (in_group, channel, _) in readable {
                    if in_group == group {
                        let seq = self
                            .subscribe(Room::Conversation(channel), Some(group))
                            .await;
                        positions.insert(channel.to_string(), seq.into());
                    }
                }
            }
        }
        self.send(&frames::control(
            "room_joined",
            json!({"room_id": room_id, "rooms": positions}),
        ))
        .await
    }

    /// Replays what the client missed in a room since `last_seq`.
    pub(super) async fn resume(&mut self, room_id: Uuid, last_seq: u64) -> Result<(), Closing> {
        let room = if room_id == self.user {
            Room::User(self.user)
        } else {
            let Some((group, _)) = self.authorize(room_id).await? else {
                return self
                    .send(&frames::error(
                        "not_found",
                        &format!("no room {room_id} you may resume"),
                    ))
                    .await;
            };
            let room = Room::Conversation(room_id);
            if self.over_room_cap(&[room]) {
                return self.too_many_rooms().await;
            }
            self.subscribe(room, Some(group)).await;
            room
        };
        if let Some(joined) = self.rooms.get_mut(&room) {
            joined.last_seq = last_seq;
        }
        let (recovered, replayed) = self.catch_up(room, None).await?;
        self.send(&frames::control(
            "resumed",
            json!({"room_id": room_id, "recovered": recovered, "replayed": replayed}),
        ))
        .await
    }

    /// Sends the logged frames after the room's position (up to `upto`).
    /// Returns whether nothing was lost, and how many frames were sent.
    pub(super) async fn catch_up(
        &mut self,
        room: Room,
        upto: Option<u64>,
    ) -> Result<(bool, usize), Closing> {
        let Some(mut last) = self.rooms.get(&room).map(|joined| joined.last_seq) else {
            return Ok((true, 0));
        };
        let read = match self.realtime.store.read_log(room, last, upto).await {
            Ok(read) => read,
            Err(err) => {
                tracing::debug!(%err, "cannot read a room log");
                return Ok((false, 0));
            }
        };
        if last == 0 {
            // Joined before the room's first frame, whose number starts from
            // the clock: nothing before that frame was missed.
            last = read.first.saturating_sub(1);
        }
        let current = upto.unwrap_or(read.current);
        if current <= last {
            return Ok((true, 0));
        }
        let entries: Vec<Logged> = read
            .entries
            .into_iter()
            .filter(|entry| entry.seq > last)
            .collect();
        let complete = entries.first().map(|entry| entry.seq) == Some(last + 1);
        if !complete {
            // Older than the log keeps: the client refetches over REST.
            self.send(&frames::control(
                "resync_required",
                json!({"room_id": room.id(), "from_seq": last, "to_seq": current}),
            ))
            .await?;
        }
        let mut sent = 0;
        for entry in entries {
            let Some(joined) = self.rooms.get_mut(&room) else {
                break;
            };
            if entry.seq <= joined.last_seq {
                continue;
            }
            joined.last_seq = entry.seq;
            if joined.recent.first_time(&entry.event) {
                self.send(&entry.frame).await?;
                sent += 1;
            }
        }
        if let Some(joined) = self.rooms.get_mut(&room) {
            joined.last_seq = joined.last_seq.max(current);
        }
        Ok((complete, sent))
    }

    /// After the subscriber was away: frames may have been missed in any
    /// room, and revocations announced meanwhile were not heard (the
    /// deny-list still has them).
    async fn catch_up_everywhere(&mut self) -> Result<(), Closing> {
        if self
            .realtime
            .tokens
            .deny_list()
            .is_revoked(self.session)
            .await
        {
            return Err(Closing(
                close::SESSION_REVOKED,
                "the session has ended; sign in again",
            ));
        }
        let rooms: Vec<Room> = self.rooms.keys().copied().collect();
        for room in rooms {
            self.catch_up(room, None).await?;
        }
        Ok(())
    }

    pub(super) async fn on_signal(&mut self, signal: Signal) -> Result<(), Closing> {
        match signal {
            Signal::Frame(published) => {
                let Published {
                    room,
                    seq,
                    ref event,
                    ref frame,
                } = *published;
                let Some(last) = self.rooms.get(&room).map(|joined| joined.last_seq) else {
                    return Ok(()); // left meanwhile
                };
                if seq == 0 {
                    return self.send(frame).await;
                }
                if seq <= last {
                    return Ok(()); // already delivered (replay or duplicate)
                }
                if seq > last + 1 {
                    Box::pin(self.catch_up(room, Some(seq - 1))).await?;
                }
                let Some(joined) = self.rooms.get_mut(&room) else {
                    return Ok(());
                };
                joined.last_seq = seq;
                if !joined.recent.first_time(event) {
                    return Ok(()); // published again after Redis lost its data
                }
                record_send_to_deliver(event);
                self.send(frame).await?;
                if room == Room::User(self.user) {
                    Box::pin(self.on_own_event(frame)).await?;
                }
                Ok(())
            }
            Signal::CatchUp => Box::pin(self.catch_up_everywhere()).await,
            Signal::Revalidate(group) => Box::pin(self.revalidate(group)).await,
            Signal::Revoked => Err(Closing(
                close::SESSION_REVOKED,
                "the session has ended; sign in again",
            )),
        }
    }

    /// Frames in the user's own room that change what they may read.
    pub(super) async fn on_own_event(&mut self, frame: &str) -> Result<(), Closing> {
        let Ok(frame) = serde_json::from_str::<Value>(frame) else {
            return Ok(());
        };
        let group = |field: &str| {
            frame["data"][field]
                .as_str()
                .and_then(|raw| Uuid::parse_str(raw).ok())
        };
        match frame["type"].as_str() {
            Some("member_removed" | "member_left" | "group_deleted" | "channel_member_removed") => {
                if let Some(group) = group("group_id") {
                    self.revalidate(group).await?;
                }
            }
            Some("dm_opened") => {
                // The frame only names the conversation: whoever can write
                // to Kafka or Redis could name any. What the socket follows
                // is what `Authorize` says this user may read.
                let channel = frame["data"]["channel"]["id"]
                    .as_str()
                    .and_then(|raw| Uuid::parse_str(raw).ok());
                if let Some(channel) = channel
                    && let Some((group, Some(allowed))) = self.authorize(channel).await?
                {
                    self.subscribe(Room::Conversation(group), Some(group)).await;
                    self.subscribe(Room::Conversation(allowed), Some(group))
                        .await;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Drops the rooms of `group` the user may no longer read.
    pub(super) async fn revalidate(&mut self, group: Uuid) -> Result<(), Closing> {
        let rooms: Vec<Room> = self
            .rooms
            .iter()
            .filter(|(_, joined)| joined.group == Some(group))
            .map(|(room, _)| *room)
            .collect();
        for room in rooms {
            if self.authorize(room.id()).await?.is_none() {
                self.unsubscribe(room).await;
                self.send(&frames::control(
                    "room_left",
                    json!({"room_id": room.id(), "reason": "access_revoked"}),
                ))
                .await?;
            }
        }
        Ok(())
    }
}

/// Seconds from the commit of a live event to its frame handed to this
/// socket's writer: the send → deliver time a person feels, but for the
/// REST call before the commit (`http_request_duration_seconds`).
fn record_send_to_deliver(event: &str) {
    use crate::realtime::store::{committed_at_ms, seconds_since};
    if let Some(lag) = committed_at_ms(event).and_then(seconds_since) {
        metrics::histogram!("realtime_delivery_seconds").record(lag);
    }
}
