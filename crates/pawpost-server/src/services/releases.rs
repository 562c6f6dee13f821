//! Signed releases of the toy's software (docs/UPDATES.md). An operator publishes a release
//! a release key signed elsewhere; the server checks it against the release public keys it
//! is configured with, keeps the image in the blob store, offers the newest release of a
//! toy's board whose counter is above the toy's, and records the version each toy reports
//! so that its parents see it. The server cannot make a release: it holds no release key.
use crate::state::AppState;
use pawpost_crypto::{verify_manifest, ImageDigest, ManifestError, MANIFEST_SIGNATURE_LEN};
use pawpost_domain::DeviceId;
use pawpost_store::{
    BlobKey, BlobStore, MetadataStore, Release, StoreError, StoreResult, ToySoftware,
};
use time::OffsetDateTime;

/// Largest image published: one image slot of the toy's flash (the toy refuses more,
/// `pawpost_toy::MAX_UPDATE_IMAGE_BYTES`).
pub const MAX_RELEASE_IMAGE_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("no release public key is configured: give the server --release-public-key (PAWPOST_RELEASE_PUBLIC_KEY) first")]
    NoReleaseKeys,
    #[error("the manifest was not signed by a configured release key: sign it with `pawpost release sign` and the release key whose public half the server is given")]
    WrongKey,
    #[error("the manifest is not valid ({0}): make it again with `pawpost release sign`")]
    Manifest(ManifestError),
    #[error("the image is not the one the manifest describes (its size or SHA-256 differs): publish the image that was signed")]
    ImageMismatch,
    #[error("the image is larger than a toy's image slot (1 MiB)")]
    TooLarge,
    #[error("this board already has a release with this counter: sign the new image with a higher --counter")]
    AlreadyPublished,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a signed release against `trusted` and keeps it: the image in `blobs`, the
/// manifest and signature in `store`.
pub async fn publish(
    store: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    trusted: &[[u8; 32]],
    manifest: &[u8],
    signature: &[u8; MANIFEST_SIGNATURE_LEN],
    image: &[u8],
) -> Result<Release, PublishError> {
    if trusted.is_empty() {
        return Err(PublishError::NoReleaseKeys);
    }
    let checked = verify_manifest(manifest, signature, trusted).map_err(|e| match e {
        ManifestError::BadSignature => PublishError::WrongKey,
        other => PublishError::Manifest(other),
    })?;
    if image.len() > MAX_RELEASE_IMAGE_BYTES {
        return Err(PublishError::TooLarge);
    }
    if u32::try_from(image.len()).ok() != Some(checked.size)
        || ImageDigest::of(image) != checked.sha256
    {
        return Err(PublishError::ImageMismatch);
    }
    let digest: String = checked.sha256[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let key = BlobKey::new(format!(
        "releases/{}/{}-{digest}",
        checked.board, checked.counter
    ))
    .map_err(|e| StoreError::Backend(e.to_string()))?;
    if store
        .newest_release(&checked.board, checked.counter.saturating_sub(1))
        .await?
        .is_some_and(|r| r.counter == checked.counter)
    {
        return Err(PublishError::AlreadyPublished);
    }
    blobs.put(&key, image).await?;
    let release = Release {
        board: checked.board,
        counter: checked.counter,
        version: checked.version,
        size: checked.size,
        manifest: manifest.to_vec(),
        signature: *signature,
        blob_key: key.as_str().to_owned(),
        created_at: pawpost_store::stored::whole_ms(OffsetDateTime::now_utc()),
    };
    match store.put_release(&release).await {
        Ok(()) => {
            crate::audit::record_in(
                store,
                crate::audit::Event::new(crate::audit::AuditAction::ReleasePublished).on(format!(
                    "{} version {} counter {}",
                    release.board, release.version, release.counter
                )),
            )
            .await;
            Ok(release)
        }
        Err(StoreError::Conflict(_)) => Err(PublishError::AlreadyPublished),
        Err(e) => Err(e.into()),
    }
}

/// A toy said what it runs: records it, and returns the release to offer it, if the
/// server has one for its board with a higher counter that a configured key signed.
pub async fn toy_reported(
    state: &AppState,
    toy: DeviceId,
    board: &str,
    version: u32,
    counter: u32,
) -> StoreResult<Option<Release>> {
    state
        .store
        .set_toy_software(&ToySoftware {
            toy_device_id: toy,
            board: board.to_owned(),
            version,
            counter,
            reported_at: pawpost_store::stored::whole_ms(OffsetDateTime::now_utc()),
        })
        .await?;
    if let Some(household) = state.store.device(toy).await?.and_then(|d| d.household_id) {
        crate::events::publish(state, crate::events::Change::toy(household, toy)).await;
    }
    let trusted = &state.config.release_public_keys;
    if trusted.is_empty() {
        return Ok(None);
    }
    let Some(release) = state.store.newest_release(board, counter).await? else {
        return Ok(None);
    };
    // A release whose key was since taken out of the configuration is not offered.
    Ok(
        verify_manifest(&release.manifest, &release.signature, trusted)
            .is_ok()
            .then_some(release),
    )
}

/// The image of `release`, as published.
pub async fn image(state: &AppState, release: &Release) -> StoreResult<Option<Vec<u8>>> {
    let key =
        BlobKey::new(release.blob_key.clone()).map_err(|e| StoreError::Backend(e.to_string()))?;
    let image = state.blobs.get(&key).await?;
    Ok(image.filter(|i| {
        u32::try_from(i.len()).ok() == Some(release.size)
            && verify_manifest(
                &release.manifest,
                &release.signature,
                &state.config.release_public_keys,
            )
            .is_ok_and(|m| m.sha256 == ImageDigest::of(i))
    }))
}

/// What the household's toys last said they run (the caller checked the membership).
pub async fn household_software(
    state: &AppState,
    household: pawpost_domain::HouseholdId,
) -> StoreResult<Vec<ToySoftware>> {
    state.store.toy_software(household).await
}
