//! Signed updates on the toy's WebSocket (docs/UPDATES.md): after `Auth` the toy says what
//! it runs (`Version`); the server records it and offers the newest signed release of its
//! board with a higher counter (`UpdateOffer`), then sends the image in pieces as the toy
//! asks for them (`UpdateRequest`, `UpdateChunk`). The toy checks everything itself; the
//! server only relays what the release key signed.
use super::Session;
use crate::services::releases;
use pawpost_domain::DeviceId;
use pawpost_protocol::{Frame, UPDATE_CHUNK_BYTES};
use pawpost_store::{Release, StoreResult};

/// Most pieces sent for one `UpdateRequest`, whatever window the toy asks for.
pub const MAX_UPDATE_WINDOW_CHUNKS: u8 = 8;

/// A connection's updates: the toy says what it runs once per connection (a toy saying it
/// again is ignored, so that it cannot make the server write and notify in a loop), and
/// the release offered then.
#[derive(Default)]
pub(super) struct Updates {
    reported: bool,
    /// Boxed: most connections are offered nothing.
    offered: Option<Box<Offered>>,
}

/// The release offered on this connection, and its image once the toy asked for it.
struct Offered {
    release: Release,
    image: Option<Vec<u8>>,
}

impl Session {
    pub(super) async fn version(
        &mut self,
        toy: DeviceId,
        board: &str,
        version: u32,
        counter: u32,
    ) -> StoreResult<()> {
        if std::mem::replace(&mut self.update.reported, true) {
            tracing::info!(toy = %toy, "toy said its version twice on one connection; ignored");
            return Ok(());
        }
        let Some(release) =
            releases::toy_reported(&self.state, toy, board, version, counter).await?
        else {
            return Ok(());
        };
        tracing::info!(toy = %toy, board, from = version, to = release.version, "offering the toy a signed release");
        self.send(&Frame::UpdateOffer {
            manifest: &release.manifest,
            signature: release.signature,
        })
        .await;
        self.update.offered = Some(Box::new(Offered {
            release,
            image: None,
        }));
        Ok(())
    }

    pub(super) async fn update_request(
        &mut self,
        toy: DeviceId,
        offset: u32,
        window: u8,
    ) -> StoreResult<()> {
        let Some(offered) = &mut self.update.offered else {
            tracing::info!(toy = %toy, "toy asked for an update it was not offered; ignored");
            return Ok(());
        };
        if offered.image.is_none() {
            offered.image = releases::image(&self.state, &offered.release).await?;
        }
        let Some(image) = offered.image.as_deref() else {
            tracing::warn!(toy = %toy, key = %offered.release.blob_key, "a release's image is missing or does not match its manifest; not sent");
            return Ok(());
        };
        let mut at = usize::try_from(offset).unwrap_or(usize::MAX);
        let mut frames = Vec::new();
        for _ in 0..window.min(MAX_UPDATE_WINDOW_CHUNKS) {
            if at >= image.len() {
                break;
            }
            let end = image.len().min(at + UPDATE_CHUNK_BYTES);
            let Ok(piece_at) = u32::try_from(at) else {
                break;
            };
            if let Ok(frame) = (Frame::UpdateChunk {
                offset: piece_at,
                bytes: &image[at..end],
            })
            .encode()
            {
                frames.push(frame);
            }
            at = end;
        }
        for frame in frames {
            let _ = self.outbox.send(frame).await;
        }
        Ok(())
    }
}
