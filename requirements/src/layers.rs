//! Requirement layers and loading them from disk.
//!
//! Precedence, highest first: the cloud bundle, the managed directory (`managed.d/*.toml`; a
//! file later in lexical order overrides an earlier one, like systemd drop-ins), the local file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::integrity::{self, IntegrityError, TrustPolicy};
use crate::schema::{BundleHeader, Requirements};
use crate::source::{ParseError, SourceText};
use warden_wire::string_enum;

/// The managed preferences directory.
pub const DEFAULT_MANAGED_DIR: &str = "/etc/warden/managed.d";
/// The local requirements file.
pub const DEFAULT_LOCAL_FILE: &str = "/etc/warden/requirements.toml";

string_enum! {
    /// Where a layer comes from.
    LayerKind, "layer kind" {
        CloudBundle = "cloud-bundle",
        Managed = "managed",
        Local = "local",
    }
}

/// Version and expiry of a cloud bundle, read from its `[bundle]` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleInfo {
    pub version: u64,
    pub expires_at: OffsetDateTime,
}

/// One parsed requirements document and where it came from.
#[derive(Clone, Debug)]
pub struct Layer {
    kind: LayerKind,
    source: Arc<SourceText>,
    requirements: Requirements,
    bundle: Option<BundleInfo>,
}

impl Layer {
    /// Parses `text`, named `name` in messages (a path or URL), as a layer of `kind`.
    ///
    /// A cloud bundle must have a `[bundle]` table and no `[cloud]` table (a bundle cannot
    /// choose where bundles come from or who signs them); other layers must have no `[bundle]`.
    pub fn parse(
        kind: LayerKind,
        name: impl Into<String>,
        text: impl Into<String>,
    ) -> Result<Self, ParseError> {
        let source = SourceText::new(name, text);
        let requirements: Requirements = source.parse()?;
        let bundle = match (kind, &requirements.bundle) {
            (LayerKind::CloudBundle, header) => {
                let cloud = &requirements.cloud;
                let url = (cloud.bundle_url.as_ref()).map(|v| ("cloud.bundle_url", v.span()));
                let key = (cloud.public_key.as_ref()).map(|v| ("cloud.public_key", v.span()));
                if let Some((key, span)) = url.or(key) {
                    return Err(source.error_at(
                        span,
                        key,
                        "a cloud bundle cannot choose where bundles come from or who signs them; \
                         [cloud] belongs in a local layer",
                    ));
                }
                let header = header.as_ref().ok_or_else(|| {
                    source.error(
                        "a cloud bundle needs a [bundle] table with `version` and `expires_at`",
                    )
                })?;
                Some(bundle_info(&source, header.get_ref())?)
            }
            (_, Some(header)) => {
                return Err(source.error_at(
                    header.span(),
                    "bundle",
                    "[bundle] is allowed only in a cloud bundle",
                ));
            }
            (_, None) => None,
        };
        Ok(Self {
            kind,
            source,
            requirements,
            bundle,
        })
    }

    /// Reads and parses the file at `path` after checking its integrity. `Ok(None)` when there
    /// is no such file: an absent layer sets nothing.
    pub fn load(
        kind: LayerKind,
        path: &Path,
        policy: &TrustPolicy,
    ) -> Result<Option<Self>, LoadError> {
        let bytes = match integrity::read_trusted(path, policy) {
            Err(e) if e.is_missing() => return Ok(None),
            other => other?,
        };
        let text = String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8(path.to_owned()))?;
        Ok(Some(Self::parse(kind, path.display().to_string(), text)?))
    }

    pub fn kind(&self) -> LayerKind {
        self.kind
    }

    /// The file or URL the layer was read from.
    pub fn name(&self) -> &str {
        self.source.name()
    }

    pub fn source(&self) -> &Arc<SourceText> {
        &self.source
    }

    pub fn requirements(&self) -> &Requirements {
        &self.requirements
    }

    /// Version and expiry, for a cloud bundle.
    pub fn bundle_info(&self) -> Option<BundleInfo> {
        self.bundle
    }
}

fn bundle_info(source: &SourceText, header: &BundleHeader) -> Result<BundleInfo, ParseError> {
    let expires = &header.expires_at;
    // toml has already checked the RFC 3339 syntax; what is left is requiring the offset.
    let expires_at = expires
        .get_ref()
        .offset
        .and_then(|_| OffsetDateTime::parse(&expires.get_ref().to_string(), &Rfc3339).ok())
        .ok_or_else(|| {
            source.error_at(
                expires.span(),
                "bundle.expires_at",
                "must be a date-time with a UTC offset, e.g. 2026-09-01T00:00:00Z",
            )
        })?;
    Ok(BundleInfo {
        version: *header.version.get_ref(),
        expires_at,
    })
}

/// Where the local layers live. `Default` gives the paths Warden uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerPaths {
    pub managed_dir: PathBuf,
    pub local_file: PathBuf,
}

impl Default for LayerPaths {
    fn default() -> Self {
        Self {
            managed_dir: DEFAULT_MANAGED_DIR.into(),
            local_file: DEFAULT_LOCAL_FILE.into(),
        }
    }
}

/// The managed and local layers, in precedence order (highest first), ready for
/// [`crate::merge`] after the cloud bundle, if any.
pub fn load_local_layers(
    paths: &LayerPaths,
    policy: &TrustPolicy,
) -> Result<Vec<Layer>, LoadError> {
    let mut layers = load_managed_dir(&paths.managed_dir, policy)?;
    layers.extend(Layer::load(LayerKind::Local, &paths.local_file, policy)?);
    Ok(layers)
}

/// The `*.toml` files of the managed directory, in precedence order: the last in lexical
/// (byte) order first, since a later drop-in overrides an earlier one. Other names are
/// ignored; a missing directory holds no layers.
pub fn load_managed_dir(dir: &Path, policy: &TrustPolicy) -> Result<Vec<Layer>, LoadError> {
    match integrity::check_dir(dir, policy) {
        Err(e) if e.is_missing() => return Ok(Vec::new()),
        other => other?,
    }
    let io_error = |source| LoadError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let name = entry.map_err(io_error)?.file_name();
        if Path::new(&name)
            .extension()
            .is_some_and(|ext| ext == "toml")
        {
            names.push(name);
        }
    }
    names.sort();
    let mut layers = Vec::new();
    for name in names.iter().rev() {
        // A file removed since the listing is simply gone; any other problem is an error.
        layers.extend(Layer::load(LayerKind::Managed, &dir.join(name), policy)?);
    }
    Ok(layers)
}

/// A layer that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("{} is not valid UTF-8", .0.display())]
    NotUtf8(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
