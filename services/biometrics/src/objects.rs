//! The object store (S3: Garage in the local stack and often in production, since the law
//! keeps the data in Kazakhstan; AWS or MinIO work the same). Objects are sealed before they
//! get here, and their keys are random ids under a prefix: no personal data in a key.

use aws_sdk_s3::{
    Client,
    config::{
        BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
        ResponseChecksumValidation,
    },
    primitives::ByteStream,
};
use std::time::Duration;

/// Where and how to reach the bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Every object key starts with it (tests use one each).
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: examreg_kit::config::Secret,
}

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    #[error("no such object")]
    Missing,
}

#[derive(Clone)]
pub struct Objects {
    client: Client,
    bucket: String,
    prefix: String,
}

/// A store that did not answer, with the whole chain of what went wrong.
fn unavailable(e: impl std::error::Error) -> ObjectError {
    ObjectError::Unavailable(aws_sdk_s3::error::DisplayErrorContext(e).to_string())
}

impl Objects {
    pub fn new(config: &S3Config) -> Self {
        let credentials = Credentials::new(
            config.access_key_id.clone(),
            config.secret_access_key.expose().to_owned(),
            None,
            None,
            "examreg-config",
        );
        let s3 = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&config.endpoint)
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            // Garage and MinIO address buckets by path, and reject the CRC trailers newer SDKs
            // add by default.
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
            .build();
        Self {
            client: Client::from_conf(s3),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
        }
    }

    /// A fresh object key: the prefix and a random id.
    pub fn new_key(&self) -> String {
        format!("{}{}", self.prefix, uuid::Uuid::new_v4().simple())
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    #[tracing::instrument(skip_all)]
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/octet-stream")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, ObjectError> {
        let answer = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    ObjectError::Missing
                } else {
                    unavailable(e)
                }
            })?;
        let body = answer
            .body
            .collect()
            .await
            .map_err(|e| ObjectError::Unavailable(e.to_string()))?;
        Ok(body.into_bytes().to_vec())
    }

    #[tracing::instrument(skip_all)]
    pub async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Keys under the prefix with their last-modified time (seconds since the epoch), for the
    /// sweeper.
    #[tracing::instrument(skip_all)]
    pub async fn list(&self) -> Result<Vec<(String, i64)>, ObjectError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(unavailable)?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    keys.push((
                        key.to_owned(),
                        object.last_modified().map_or(0, |t| t.secs()),
                    ));
                }
            }
        }
        Ok(keys)
    }
}
