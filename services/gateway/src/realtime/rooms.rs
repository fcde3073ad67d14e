//! Rooms: what a connection subscribes to. A conversation room is a channel
//! or a group (its membership and channel events); every user also has a
//! room of their own (notifications, "you were added/removed").

use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Room {
    Conversation(Uuid),
    User(Uuid),
}

impl Room {
    /// The name under which Redis keeps the room's counter, log and
    /// pub/sub channel.
    pub fn key(self) -> String {
        match self {
            Room::Conversation(id) => format!("c:{id}"),
            Room::User(id) => format!("u:{id}"),
        }
    }

    pub fn parse_key(key: &str) -> Option<Room> {
        let (kind, id) = key.split_once(':')?;
        let id = Uuid::parse_str(id).ok()?;
        match kind {
            "c" => Some(Room::Conversation(id)),
            "u" => Some(Room::User(id)),
            _ => None,
        }
    }

    /// The id clients see in `room_id`.
    pub fn id(self) -> Uuid {
        match self {
            Room::Conversation(id) | Room::User(id) => id,
        }
    }

    pub fn pubsub_channel(self) -> String {
        format!("rt:room:{}", self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let id = Uuid::now_v7();
        for room in [Room::Conversation(id), Room::User(id)] {
            assert_eq!(Room::parse_key(&room.key()), Some(room));
        }
        assert_eq!(Room::parse_key("x:1"), None);
    }
}
