//! Media in S3-compatible object storage, through `object_store`. Uploads
//! stream from the staged file: one PUT for small objects, a multipart
//! upload in 8 MiB parts for large ones, so a video never sits in memory
//! whole. An object appears only when its upload completes.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, Attributes, GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use super::{MediaStore, MediaStoreError, Opened, valid_key};

const PART_SIZE: usize = 8 << 20;

pub struct S3MediaStore {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

fn error(e: object_store::Error) -> MediaStoreError {
    match e {
        object_store::Error::NotFound { .. } => MediaStoreError::NotFound,
        e => MediaStoreError::Unavailable(e.into()),
    }
}

impl S3MediaStore {
    /// `url` is `s3://bucket` or `s3://bucket/prefix`. Credentials, region and
    /// the other settings come from the standard `AWS_*` environment
    /// variables; `endpoint` (an S3-compatible service) overrides `AWS_ENDPOINT`.
    pub fn new(url: &str, endpoint: Option<&str>) -> anyhow::Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("{url} is not an s3:// URL: {e}"))?;
        anyhow::ensure!(parsed.scheme() == "s3", "{url} is not an s3:// URL");
        let bucket = parsed.host_str().filter(|b| !b.is_empty()).ok_or_else(|| anyhow::anyhow!("{url} names no bucket"))?;
        let prefix = parsed.path().trim_matches('/').to_owned();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build()?;
        Ok(Self { store: Arc::new(store), prefix })
    }

    fn location(&self, key: &str) -> Result<ObjectPath, MediaStoreError> {
        if !valid_key(key) {
            return Err(MediaStoreError::NotFound);
        }
        Ok(if self.prefix.is_empty() { ObjectPath::from(key) } else { ObjectPath::from(format!("{}/{key}", self.prefix)) })
    }
}

#[async_trait]
impl MediaStore for S3MediaStore {
    fn kind(&self) -> &'static str {
        "s3"
    }

    /// A HEAD of an object that never exists: "not found" proves the bucket
    /// answers and the credentials are accepted.
    async fn ping(&self) -> Result<(), MediaStoreError> {
        match self.store.head(&self.location("ping.probe")?).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(MediaStoreError::Unavailable(e.into())),
        }
    }

    async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> Result<(), MediaStoreError> {
        let location = self.location(key)?;
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_owned().into());
        attributes.insert(Attribute::CacheControl, "public, max-age=31536000, immutable".into());
        let mut upload = BufWriter::with_capacity(self.store.clone(), location, PART_SIZE).with_attributes(attributes);
        let copied = async {
            let mut file = tokio::fs::File::open(path).await?;
            tokio::io::copy(&mut file, &mut upload).await?;
            upload.shutdown().await
        }
        .await;
        if let Err(e) = copied {
            let _ = upload.abort().await;
            return Err(MediaStoreError::Unavailable(e.into()));
        }
        Ok(())
    }

    async fn open(&self, key: &str, range: Option<(u64, u64)>) -> Result<Opened, MediaStoreError> {
        let options = GetOptions { range: range.map(|(start, end)| GetRange::Bounded(start..end + 1)), ..Default::default() };
        let result = self.store.get_opts(&self.location(key)?, options).await.map_err(error)?;
        let total = result.meta.size;
        let stream = result.into_stream().map_err(std::io::Error::other);
        Ok(Opened { total, stream: Box::pin(stream) })
    }

    async fn size(&self, key: &str) -> Result<u64, MediaStoreError> {
        Ok(self.store.head(&self.location(key)?).await.map_err(error)?.size)
    }

    async fn delete(&self, key: &str) -> Result<(), MediaStoreError> {
        match self.store.delete(&self.location(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(MediaStoreError::Unavailable(e.into())),
        }
    }
}
