//! `pawpost release`: make a release key, sign an image of the toy's software with it, and
//! publish a signed release to a server's store (docs/UPDATES.md). The release key belongs
//! on the release manager's machine, never on the server; the server is given only its
//! public half (`pawpost serve --release-public-key`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use eyre::{bail, eyre, WrapErr};
use pawpost_crypto::rand_core::Rng as _;
use pawpost_crypto::{ImageDigest, Manifest, ReleaseKey, MANIFEST_SIGNATURE_LEN};

/// What `pawpost release` does.
#[derive(Subcommand)]
pub enum ReleaseCommand {
    /// Make a release key: writes its private half to --out (mode 0600; keep it off the
    /// server) and prints its public half for the server and the toy's image.
    Keygen {
        /// The private key file to create (it must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Sign an image for a board: writes the signed manifest (the manifest, then its
    /// 64-byte Ed25519 signature) to --out.
    Sign {
        /// The private key file from `pawpost release keygen`.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The board the image is built for (a-z, 0-9, -), e.g. mps2-an386.
        #[arg(long)]
        board: String,
        /// The software version parents see.
        #[arg(long)]
        version: u32,
        /// The anti-rollback counter: toys install only a counter above the one they run,
        /// so raise it with every release (and for every security fix).
        #[arg(long)]
        counter: u32,
        /// The image file.
        image: PathBuf,
        /// The signed manifest to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Publish a signed release to the server's store, after checking it against the
    /// release public keys the server is given (--release-public-key); toys of its board
    /// running a lower counter are offered it when they next connect.
    Publish {
        /// The signed manifest from `pawpost release sign`.
        #[arg(long, value_name = "FILE")]
        manifest: PathBuf,
        /// The image that was signed.
        #[arg(long, value_name = "FILE")]
        image: PathBuf,
        /// The release public keys to check against, as the server is given them.
        #[arg(
            long = "release-public-key",
            value_name = "HEX",
            env = "PAWPOST_RELEASE_PUBLIC_KEY",
            value_delimiter = ',',
            value_parser = parse_public_key,
            required = true
        )]
        release_public_keys: Vec<[u8; 32]>,
        #[command(flatten)]
        store: crate::StoreArgs,
    },
}

/// A release public key: 64 hex digits of an Ed25519 public key.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], String> {
    let bytes =
        from_hex(text.trim()).ok_or_else(|| "a release public key is 64 hex digits".to_owned())?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "a release public key is 64 hex digits".to_owned())?;
    if !pawpost_crypto::valid_release_public_key(&key) {
        return Err(
            "this is not an Ed25519 public key; copy the one `pawpost release keygen` printed"
                .into(),
        );
    }
    Ok(key)
}

pub async fn run(command: ReleaseCommand) -> eyre::Result<()> {
    match command {
        ReleaseCommand::Keygen { out } => {
            let mut seed = [0u8; 32];
            pawpost_crypto::os_rng().fill_bytes(&mut seed);
            let key = ReleaseKey::from_seed(&seed);
            seed.fill(0);
            write_private(&out, &format!("{}\n", to_hex(key.seed().as_slice())))?;
            println!("release public key: {}", to_hex(&key.public_key()));
            println!(
                "private key written to {}; keep it off the server",
                out.display()
            );
        }
        ReleaseCommand::Sign {
            key,
            board,
            version,
            counter,
            image,
            out,
        } => {
            let key = read_key(&key)?;
            let bytes = fs::read(&image)
                .wrap_err_with(|| format!("cannot read the image {}", image.display()))?;
            let size = u32::try_from(bytes.len())
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| eyre!("the image must be 1 byte to 4 GiB"))?;
            let manifest = Manifest {
                board,
                version,
                counter,
                size,
                sha256: ImageDigest::of(&bytes),
            }
            .encode()
            .map_err(|e| eyre!("{e}"))?;
            let mut signed = manifest.clone();
            signed.extend_from_slice(&key.sign(&manifest));
            fs::write(&out, signed).wrap_err_with(|| format!("cannot write {}", out.display()))?;
            println!(
                "signed version {version} (counter {counter}, {size} bytes) into {}",
                out.display()
            );
        }
        ReleaseCommand::Publish {
            manifest,
            image,
            release_public_keys,
            store,
        } => {
            let signed = fs::read(&manifest)
                .wrap_err_with(|| format!("cannot read the manifest {}", manifest.display()))?;
            let image = fs::read(&image)
                .wrap_err_with(|| format!("cannot read the image {}", image.display()))?;
            let Some(split) = signed.len().checked_sub(MANIFEST_SIGNATURE_LEN) else {
                bail!(
                    "{} is not a signed manifest from `pawpost release sign`",
                    manifest.display()
                );
            };
            let (bytes, signature) = signed.split_at(split);
            let signature: [u8; MANIFEST_SIGNATURE_LEN] = signature
                .try_into()
                .expect("split at the signature's length");
            let (store, blobs) = pawpost_storage::open(&store.storage()?).await?;
            let release = pawpost_server::services::releases::publish(
                store.as_ref(),
                blobs.as_ref(),
                &release_public_keys,
                bytes,
                &signature,
                &image,
            )
            .await?;
            println!(
                "published version {} (counter {}) for {}",
                release.version, release.counter, release.board
            );
        }
    }
    Ok(())
}

fn read_key(path: &Path) -> eyre::Result<ReleaseKey> {
    let text = fs::read_to_string(path)
        .wrap_err_with(|| format!("cannot read the release key {}", path.display()))?;
    let seed: [u8; 32] = from_hex(text.trim())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            eyre!(
                "{} is not a release key from `pawpost release keygen`",
                path.display()
            )
        })?;
    Ok(ReleaseKey::from_seed(&seed))
}

/// Creates `path` readable only by its owner and writes `text`; refuses to replace a file.
fn write_private(path: &Path, text: &str) -> eyre::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).wrap_err_with(|| {
        format!(
            "cannot create {} (it must not exist already)",
            path.display()
        )
    })?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}
