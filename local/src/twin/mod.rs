//! `imgflow serve`: the whole pipeline on one machine, on one address.
//!
//! One HTTP listener; [`router`] tells the services apart. Behind it: the S3 endpoint (the
//! object store under `DATA_DIR/s3`, announcing stored objects), the [`pipeline`] rule that starts the state
//! machine for objects under `uploads/`, the ASL engine persisted in `DATA_DIR/engine.sqlite` and
//! calling the step handlers in-process, the SQLite metadata store (`DATA_DIR/metadata.sqlite`),
//! the [`failures`] rule that marks images FAILED, the upload [`api`] and the console.

pub mod api;
pub mod failures;
pub mod pipeline;
pub mod router;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use imgflow_engine::{Clock, Engine, EngineConfig, EngineError, RealClock, SqliteStore, StateMachineRecord};
use imgflow_steps::StepConfig;
use imgflow_steps::metadata::MetadataStore;
use imgflow_steps::objects::S3Objects;
use s3s::Body;
use s3s::service::S3Service;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::functions::{EngineFailedStates, Faults, InvalidFault, StepFunctions, substitute, substitutions};
use crate::metadata_sqlite::SqliteMetadataStore;
use crate::s3::{self, Credentials, InProcessS3, S3EndpointError};
use crate::sfn;
use api::{DEFAULT_UPLOAD_LIMIT, UploadApi, json_response};
use failures::{DeliveryLog, DeliveryLogError, FailureRule};
use pipeline::Pipeline;

/// The state machine, the very file the SAM template deploys.
pub const DEFINITION: &str = include_str!("../../../statemachine/image-pipeline.asl.json");
pub const STATE_MACHINE_NAME: &str = "imgflow-image-pipeline";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/imgflow-local";

/// Everything `imgflow serve` can be told.
#[derive(Clone)]
pub struct TwinConfig {
    pub data_dir: PathBuf,
    /// 127.0.0.1:4566 by default; port 0 picks a free one.
    pub addr: SocketAddr,
    pub bucket: String,
    /// Injected failures (see [`Faults`]).
    pub faults: String,
    /// Executions whose states run at once (default: the number of cores).
    pub max_concurrent_executions: usize,
    /// Open executions (running or waiting) beyond which uploads get 503 SlowDown.
    pub max_open_executions: usize,
    pub upload_limit: usize,
    /// What S3 clients sign with.
    pub credentials: Credentials,
    /// The steps' settings (limits, renditions, GPS…), as the Lambda functions read them from
    /// `IMGFLOW_*` variables. The public URLs always point at the twin.
    pub steps: StepConfig,
    /// How long Ctrl-C waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Waits and retry delays; tests pass an instant clock.
    pub clock: Arc<dyn Clock>,
}

impl TwinConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> TwinConfig {
        TwinConfig {
            data_dir: data_dir.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 4566)),
            bucket: "images".to_owned(),
            faults: String::new(),
            max_concurrent_executions: std::thread::available_parallelism().map_or(2, usize::from),
            max_open_executions: 1000,
            upload_limit: DEFAULT_UPLOAD_LIMIT,
            credentials: Credentials { access_key: "test".to_owned(), secret_key: "test".to_owned() },
            steps: StepConfig::default(),
            shutdown_grace: Duration::from_secs(10),
            clock: Arc::new(RealClock),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TwinError {
    #[error("cannot create the data folder {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    S3(#[from] S3EndpointError),
    #[error("the execution store: {0}")]
    Engine(#[from] EngineError),
    #[error("the execution store: {0}")]
    Store(#[from] imgflow_engine::StoreError),
    #[error("the metadata store: {0}")]
    Metadata(#[from] imgflow_steps::StepError),
    #[error(transparent)]
    Deliveries(#[from] DeliveryLogError),
    #[error(transparent)]
    Faults(#[from] InvalidFault),
    #[error("the state machine: {0}")]
    Definition(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// A running twin.
pub struct Twin {
    addr: SocketAddr,
    state_machine_arn: String,
    engine: Engine,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    failures: JoinHandle<()>,
}

struct Services {
    s3: S3Service,
    api: UploadApi,
    engine: Engine,
}

impl Twin {
    pub async fn start(config: TwinConfig) -> Result<Twin, TwinError> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir)
            .map_err(|source| TwinError::DataDir { path: data_dir.display().to_string(), source })?;
        let listener =
            TcpListener::bind(config.addr).await.map_err(|source| TwinError::Bind { addr: config.addr, source })?;
        let addr = listener.local_addr().map_err(|source| TwinError::Bind { addr: config.addr, source })?;
        let url = format!("http://{addr}");

        let mut steps = config.steps.clone();
        steps.public_base_url = Some(format!("{url}/{}", config.bucket));
        let metadata: Arc<dyn MetadataStore> = Arc::new(SqliteMetadataStore::open(&data_dir.join("metadata.sqlite"))?);
        let failed_states = Arc::new(EngineFailedStates::default());
        // The steps reach the S3 service in-process; it is connected once it exists (below).
        let steps_s3 = InProcessS3::default();
        let functions = Arc::new(StepFunctions {
            s3: S3Objects::new(s3_client(&url, &config.credentials, steps_s3.clone())),
            store: Arc::clone(&metadata),
            failed_states: failed_states.clone(),
            config: steps,
            faults: Arc::new(Faults::parse(&config.faults)?),
        });
        let store = Arc::new(SqliteStore::open(data_dir.join("engine.sqlite"))?);
        let engine_config = EngineConfig {
            max_concurrent_executions: config.max_concurrent_executions.max(1),
            max_open_executions: config.max_open_executions.max(1),
            ..EngineConfig::default()
        };
        let engine = Engine::new(store, functions.clone(), Arc::clone(&config.clock), engine_config.clone())?;
        failed_states.set_engine(engine.clone());
        let state_machine_arn = register_pipeline(&engine, &engine_config)?;

        let pipeline = Arc::new(Pipeline::new(engine.clone(), state_machine_arn.clone(), config.bucket.clone()));
        let s3_root = data_dir.join("s3");
        let (s3_service, objects) = s3::service(&s3_root, config.credentials.clone(), pipeline.clone())?;
        objects.ensure_bucket(&config.bucket).map_err(|e| S3EndpointError::Storage {
            path: s3_root.display().to_string(),
            message: format!("cannot create the bucket {}: {}", config.bucket, e.message().unwrap_or("failed")),
        })?;
        steps_s3.connect(s3_service.clone());

        let (stop, stopped) = watch::channel(false);
        let rule = Arc::new(FailureRule {
            pipeline: Arc::clone(&pipeline),
            functions,
            log: DeliveryLog::open(&data_dir.join("twin.sqlite"))?,
        });
        // Subscribed before the resumed executions announce themselves.
        let failures = tokio::spawn(rule.run(stopped.clone()));
        let resumed = engine.resume_incomplete().await?;
        if resumed > 0 {
            tracing::info!(resumed, "resumed the executions that were running when the twin stopped");
        }

        let services = Arc::new(Services {
            s3: s3_service,
            api: UploadApi { pipeline, objects, metadata, upload_limit: config.upload_limit, base_url: url.clone() },
            engine: engine.clone(),
        });
        let server = tokio::spawn(serve(listener, services, stopped, config.shutdown_grace));
        tracing::info!(%url, data_dir = %data_dir.display(), bucket = %config.bucket, "imgflow twin listening");
        Ok(Twin { addr, state_machine_arn, engine, stop, server, failures })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state_machine_arn(&self) -> &str {
        &self.state_machine_arn
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Stops accepting connections and lets the requests in flight finish (up to the grace
    /// period). Executions still running are durable and resume at the next start.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        let _ = self.failures.await;
        let open = self.engine.open_executions();
        if open > 0 {
            tracing::info!(open, "executions still open resume at the next start");
        }
    }
}

/// The pipeline's state machine with the twin's substitutions, registered (or updated, when the
/// file changed) under its fixed name.
fn register_pipeline(engine: &Engine, config: &EngineConfig) -> Result<String, TwinError> {
    let definition = substitute(DEFINITION, &substitutions(&config.region, &config.account_id))
        .map_err(|e| TwinError::Definition(e.to_string()))?;
    let arn = engine.state_machine_arn(STATE_MACHINE_NAME);
    let existing = engine.state_machine(&arn);
    if existing.as_ref().is_some_and(|m| m.definition == definition) {
        return Ok(arn);
    }
    engine.register_state_machine(StateMachineRecord {
        arn: arn.clone(),
        name: STATE_MACHINE_NAME.to_owned(),
        definition,
        role_arn: ROLE_ARN.to_owned(),
        creation_date: existing.map_or_else(chrono::Utc::now, |m| m.creation_date),
    })?;
    Ok(arn)
}

/// The steps' S3 client: the twin's own S3 endpoint, path-style, reached in-process (its URL
/// still names the host that requests are signed for).
fn s3_client(url: &str, credentials: &Credentials, connection: InProcessS3) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            credentials.access_key.clone(),
            credentials.secret_key.clone(),
            None,
            None,
            "imgflow-twin",
        ))
        .endpoint_url(url)
        .force_path_style(true)
        .http_client(connection)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn serve(listener: TcpListener, services: Arc<Services>, mut stopped: watch::Receiver<bool>, grace: Duration) {
    let http = ConnectionBuilder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    while let Some(socket) = crate::listener::next_connection(&listener, &mut stopped).await {
        let services = Arc::clone(&services);
        let service = hyper::service::service_fn(move |request| {
            let services = Arc::clone(&services);
            async move { Ok::<_, Infallible>(handle(&services, request).await) }
        });
        let connection = http.serve_connection_with_upgrades(TokioIo::new(socket), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(?grace, "requests still in flight after the grace period were cut");
    }
}

async fn handle(services: &Services, request: Request<Incoming>) -> Response<Body> {
    let destination = router::classify(request.method(), request.uri(), request.headers());
    match destination {
        router::Destination::StepFunctions(operation) => {
            let body = match http_body_util::BodyExt::collect(request.into_body()).await {
                Ok(body) => body.to_bytes(),
                Err(error) => return plain(StatusCode::BAD_REQUEST, format!("unreadable body: {error}")),
            };
            let answer = sfn::handle(&services.engine, &operation, &body).await;
            let mut response = Response::new(Body::from(bytes::Bytes::from(answer.body)));
            *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(sfn::CONTENT_TYPE));
            if let Some(error_type) = answer.error_type.and_then(|t| header::HeaderValue::from_str(&t).ok()) {
                response.headers_mut().insert("x-amzn-errortype", error_type);
            }
            response
        }
        router::Destination::UnknownTarget(target) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"__type": "UnknownOperationException", "message": format!("the twin does not serve {target}")}),
        ),
        router::Destination::Upload => {
            let (parts, body) = request.into_parts();
            services.api.upload(&parts.headers, body).await
        }
        router::Destination::Image(id) => services.api.image(&id).await,
        router::Destination::Images => services.api.images(request.uri().query()).await,
        router::Destination::Console => console(request.uri().path()),
        router::Destination::S3 => s3::answer(&services.s3, request.map(Body::from)).await,
    }
}

fn plain(status: StatusCode, message: String) -> Response<Body> {
    json_response(status, &json!({"message": message}))
}

/// The console's embedded assets under `/console/`.
fn console(path: &str) -> Response<Body> {
    let Some(asset_path) = path.strip_prefix("/console/") else {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::FOUND;
        response.headers_mut().insert(header::LOCATION, header::HeaderValue::from_static("/console/"));
        return response;
    };
    match imgflow_console::asset(asset_path) {
        Some(asset) => {
            let mut response = Response::new(Body::from(bytes::Bytes::from_static(asset.bytes)));
            response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(asset.content_type));
            response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
            response
        }
        None => plain(StatusCode::NOT_FOUND, format!("no console page {path}")),
    }
}
