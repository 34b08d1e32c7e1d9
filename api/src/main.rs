//! `souk`: one binary for every role of a Souk node.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use souk_actors::catalog::cache::Cache;
use souk_actors::catalog::{CatalogService, SearchEngine};
use souk_actors::email::EmailService;
use souk_actors::identity::rate_limit::{AccountGuesses, RateLimiter};
use souk_actors::identity::users::Registration;
use souk_actors::identity::{
    AccessCache, Email, Password, PasswordHasher, PersonName, UserService,
};
use souk_actors::outbox::bus::LocalBus;
use souk_actors::outbox::relay::Publisher;
use souk_actors::outbox::Topic;
use souk_api::config::{Config, LogFormat, Overrides};
use souk_api::startup::{open_database, redis_store};
use souk_api::Application;

#[derive(Debug, Parser)]
#[command(name = "souk", version, about = "Souk e-commerce backend", long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalFlags,
    #[command(subcommand)]
    command: Command,
}

/// Flags override the config file and SOUK_* variables.
#[derive(Debug, Args)]
struct GlobalFlags {
    /// TOML config file (settings named as in `souk config`).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address the REST API listens on [env: SOUK_HTTP_ADDR] [default: 127.0.0.1:8080].
    #[arg(long, global = true, value_name = "ADDR")]
    http_addr: Option<String>,
    /// Embedded-mode data directory [env: SOUK_DATA_DIR] [default: ./data].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// sqlite: or mysql: URL [env: SOUK_DATABASE_URL] [default: SQLite in the data directory].
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Log format [env: SOUK_LOG_FORMAT] [default: pretty].
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatFlag>,
    /// Address the gRPC API listens on [env: SOUK_GRPC_ADDR] [default: 127.0.0.1:50051].
    #[arg(long, global = true, value_name = "ADDR")]
    grpc_addr: Option<String>,
    /// Address /metrics, /healthz and /readyz listen on for Prometheus and probes
    /// [env: SOUK_OPS_ADDR] [default: 127.0.0.1:9464].
    #[arg(long, global = true, value_name = "ADDR")]
    ops_addr: Option<String>,
    /// Services this node runs, comma-separated: user, auth, email, product, order,
    /// inventory; or all. Services it calls but does not run are reached at
    /// SOUK_<SERVICE>_GRPC_URL [env: SOUK_SERVICES] [default: all].
    #[arg(long, global = true, value_name = "LIST")]
    services: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormatFlag {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a Souk node: applies migrations, then serves the REST and gRPC APIs of its
    /// services (--services) until SIGTERM.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the effective configuration (all layers merged) as TOML, secrets redacted.
    Config,
    /// Create a realistic demo catalog (categories, products with attributes, tags and
    /// prices). Deterministic; running it again only adds what is missing.
    Seed {
        /// How many products the catalog should hold (SKUs SEED-000001…).
        #[arg(long, default_value_t = 1000)]
        products: usize,
    },
    /// Administer accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Email chores.
    Email {
        #[command(subcommand)]
        command: EmailCommand,
    },
    /// Search index chores.
    Search {
        #[command(subcommand)]
        command: SearchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SearchCommand {
    /// Ask every running node serving the catalog to rebuild its search index from the
    /// database (an event in the outbox; each node logs its progress). Nodes also
    /// rebuild at every start; `GET /api/v1/admin/search` shows a node's index.
    Reindex,
}

#[derive(Debug, Subcommand)]
enum EmailCommand {
    /// Queue one verification reminder for each unverified account older than the given
    /// age (run it from cron; an account is reminded once). A running node sends them.
    RemindUnverified {
        /// Minimum account age, in hours (at most 876 000, a hundred years).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(0..=876_000))]
        older_than_hours: u64,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an admin account, or promote an existing account to admin (an existing
    /// account keeps its password). The password is read from standard input, one line,
    /// so it never appears in the process list or shell history.
    Create {
        /// Email address of the admin.
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Display name for a new account.
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        http_addr: cli.global.http_addr.clone(),
        data_dir: cli.global.data_dir.clone(),
        database_url: cli.global.database_url.clone(),
        log_format: cli.global.log_format.map(|format| match format {
            LogFormatFlag::Pretty => LogFormat::Pretty,
            LogFormatFlag::Json => LogFormat::Json,
        }),
        grpc_addr: cli.global.grpc_addr.clone(),
        ops_addr: cli.global.ops_addr.clone(),
        services: cli.global.services.clone(),
    };
    let config = match Config::load(cli.global.config.as_deref(), &overrides) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("souk: {error}");
            return ExitCode::from(2);
        }
    };
    if let Command::Config = cli.command {
        print!("{}", config.to_redacted_toml());
        return ExitCode::SUCCESS;
    }
    souk_api::telemetry::init(config.log.format, &config.log.filter);

    // actix actors need an actix System; its runtime's workers follow `node.cpus`.
    let system = souk_api::startup::node_system(config.cpus());
    let outcome = system.block_on(run(cli.command, config));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the context chain on one line.
            eprintln!("souk: {error:#}");
            tracing::error!(error = %format!("{error:#}"), "souk failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let application = Application::build(config).await?;
            application.run_until_stopped().await?;
            Ok(())
        }
        Command::Migrate => {
            let db = souk_api::startup::open_database(&config).await?;
            println!("migrations applied ({})", db.backend().name());
            db.close().await;
            Ok(())
        }
        Command::Config => unreachable!("handled before the runtime starts"),
        // Chores build only the service they need: no actors, no workers.
        Command::Seed { products } => {
            let db = open_database(&config).await?;
            // The seed's products reach running nodes' indexes as events; this one is
            // never built.
            let search = SearchEngine::open(None).map_err(|error| anyhow::anyhow!("{error}"))?;
            let catalog =
                CatalogService::new(db.clone(), Cache::new(redis_store(&config)?), search);
            let added =
                souk_actors::catalog::seed::seed(&catalog, &db, products, |done, target| {
                    if done % 10_000 == 0 || done == target {
                        eprintln!("seeded {done}/{target}");
                    }
                })
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            println!("seed: added {added} products; the catalog holds at least {products} seeded products");
            db.close().await;
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::Create { email, name, .. },
        } => create_admin(config, &email, &name).await,
        Command::Search {
            command: SearchCommand::Reindex,
        } => {
            let db = open_database(&config).await?;
            let event = Topic::SearchReindex
                .event("search", &serde_json::json!({}))
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            souk_db::outbox::append(db.pool(), &event).await?;
            println!("reindex requested (event {}); every running node serving the catalog rebuilds its search index", event.id);
            db.close().await;
            Ok(())
        }
        Command::Email {
            command: EmailCommand::RemindUnverified { older_than_hours },
        } => {
            let older_than = older_than_hours * 3600;
            let db = open_database(&config).await?;
            // Reminders are written to the outbox; a running node's relay sends them.
            let email = EmailService::new(db.clone(), Publisher::Local(LocalBus::new()));
            let queued = email
                .remind_unverified(std::time::Duration::from_secs(older_than))
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            println!("queued {queued} verification reminders");
            db.close().await;
            Ok(())
        }
    }
}

async fn create_admin(config: Config, raw_email: &str, raw_name: &str) -> anyhow::Result<()> {
    let email = Email::parse(raw_email).map_err(|problem| anyhow::anyhow!("--email {problem}"))?;
    let name =
        PersonName::parse(raw_name).map_err(|problem| anyhow::anyhow!("--name {problem}"))?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let raw_password = line.strip_suffix('\n').unwrap_or(&line);
    let raw_password = raw_password.strip_suffix('\r').unwrap_or(raw_password);
    let password = Password::parse(raw_password)
        .map_err(|problem| anyhow::anyhow!("the password on standard input {problem}"))?;
    let db = open_database(&config).await?;
    let limits = config.auth_settings().limits;
    let users = UserService::new(
        db.clone(),
        PasswordHasher::new(config.auth.bcrypt_cost, config.hash_threads()),
        // This command checks no password; the guesses are bounded as on a node.
        AccountGuesses::new(
            RateLimiter::new(None),
            limits.max_failures_per_account,
            limits.window,
        ),
        // The running nodes forget the account through the change's event.
        AccessCache::disabled(),
    );
    let (user, created) = users
        .create_or_promote_admin(Registration {
            email,
            password,
            name,
        })
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    if created {
        println!("created admin {} (id {})", user.email, user.id);
    } else {
        println!(
            "promoted {} (id {}) to admin; its password is unchanged",
            user.email, user.id
        );
    }
    db.close().await;
    Ok(())
}
