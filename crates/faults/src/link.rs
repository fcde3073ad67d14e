//! A cuttable TCP link in front of the broker: every client reaches the
//! broker through it (it is the advertised address), so cutting it is a
//! network partition between the fleet and Kafka, with the broker itself
//! left running.

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Link {
    up: watch::Sender<bool>,
}

impl Link {
    /// Forwards connections to `listener` on to `target` until cut.
    pub fn start(listener: TcpListener, target: SocketAddr) -> Link {
        let (up, state) = watch::channel(true);
        tokio::spawn(accept_loop(listener, target, state));
        Link { up }
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, state: watch::Receiver<bool>) {
    while let Ok((mut client, _)) = listener.accept().await {
        if !*state.borrow() {
            continue; // dropped: the client sees the connection reset
        }
        let mut state = state.clone();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(target).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = state.wait_for(|up| !*up) => {}
            }
        });
    }
}
