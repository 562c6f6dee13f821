//! The stores the server runs on. It knows them only by their traits: the `pawpost`
//! binary (through `pawpost-storage`) chooses and opens the backends and hands them over.
use pawpost_store::{BlobStore, MetadataStore};
use std::net::SocketAddr;
use std::sync::Arc;

/// The metadata store and the blob store a server runs on.
pub type Stores = (Arc<dyn MetadataStore>, Arc<dyn BlobStore>);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The opener's message is complete in itself (it says which store and what to do).
    #[error("{0}")]
    OpenStorage(Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot open storage: {0}")]
    Storage(#[from] pawpost_store::StoreError),
    #[error(
        "cannot listen on {0}: {1} (is another server using it? choose another with --listen)"
    )]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    Other(String),
}
