//! The `wagate` binary: parse the command line, read the configuration, serve.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

/// sled copies tree nodes on every write; glibc's malloc serialises those threads on
/// its arena locks (measured: a third of the applier's time). mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    /// mimalloc's run-time options (`mi_option_set` in mimalloc.h); linked in
    /// with the allocator above.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}
/// `mi_option_purge_delay` (the same index in mimalloc 2 and 3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Memory settings to make before the heap grows. mimalloc's own variables
/// (`MIMALLOC_ALLOW_THP`, `MIMALLOC_PURGE_DELAY`), when set, win.
fn tune_memory() {
    let set = |name: &str| std::env::var_os(name).is_some();
    // Huge pages: an idle wagate took 70 MB instead of 35.
    if !set("MIMALLOC_ALLOW_THP") {
        wagate::util::memory::disable_transparent_huge_pages();
    }
    // mimalloc returns freed pages to the system only when it is called again after
    // a delay (10 ms): an idle process never is, and kept 20 MB it did not use
    // (and what a burst had freed). Return them at once. A delay (100 ms measured)
    // speeds processing a little but slows answering webhooks on a busy core (p99
    // 7-10 ms instead of 5-7): docs/performance.md, "Ingest on one core".
    if !set("MIMALLOC_PURGE_DELAY") {
        // SAFETY: sets an integer option; mimalloc reads options at every purge.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

#[derive(Parser)]
#[command(
    name = "wagate",
    version,
    about = "A durable, self-hosted front door for the WhatsApp Cloud API.\n\nConfiguration comes from the environment (META_APP_SECRET, WHATSAPP_VERIFY_TOKEN, WAGATE_*); see the README."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the webhook, the API and the workers (the default).
    Serve,
    /// Check a saved webhook body against META_APP_SECRET offline, and explain a
    /// failure. Exits 0 only when the signature is valid.
    VerifySignature {
        /// The X-Hub-Signature-256 header value, e.g. 'sha256=ab12...'.
        #[arg(long)]
        header: Option<String>,
        /// The body exactly as received (e.g. saved from /api/deliveries/{id}/raw).
        file: std::path::PathBuf,
    },
    /// Add a new media master key and make it primary; old keys still decrypt.
    /// Run it while wagate is stopped (a running wagate keeps its keys until restart).
    RotateMediaKey,
    /// Write everything held about one contact (contact id, wa_id or user_id) as a
    /// zip to standard output: `wagate export-contact 16505551234 > contact.zip`.
    /// Reads the data directory directly: run it while wagate is stopped (a running
    /// wagate holds the state's lock; use GET /api/contacts/{id}/export then).
    ExportContact {
        /// The contact id, wa_id or user_id.
        id: String,
    },
    /// Erase everything wagate holds about one contact (journal, state, media), and
    /// wait until it is done: `wagate erase-contact 16505551234`. Run it while wagate
    /// is stopped (use POST /api/contacts/{id}/erase on a running one).
    EraseContact {
        /// The contact id, wa_id or user_id.
        id: String,
    },
    /// Validate the configuration, the data directory's permissions and free space.
    /// Exits 0 when wagate can start, 1 with an explanation when it cannot.
    Check,
}

fn main() -> ExitCode {
    // Whatever wagate creates is private to its user, whatever umask the service
    // manager gave it (files are also made 0600 and directories 0700 explicitly,
    // including sled's, which wagate does not create itself).
    // SAFETY: umask has no preconditions and cannot fail.
    unsafe { libc::umask(0o077) };
    tune_memory();
    let cli = Cli::parse();
    // An export writes its archive to standard output: its log goes to standard error.
    let to_stderr = matches!(cli.command, Some(Command::ExportContact { .. }));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,warp=warn,hyper=warn".into()),
        )
        .with_target(false);
    if to_stderr {
        logs.with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init();
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::VerifySignature { header, file } => verify_signature(header, &file),
        Command::Check => check(),
        Command::RotateMediaKey => rotate_media_key(),
        Command::ExportContact { id } => export_contact(&id),
        Command::EraseContact { id } => erase_contact(id),
    }
}

fn erase_contact(id: String) -> ExitCode {
    let config = match wagate::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wagate: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wagate: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(wagate::app::erase_offline(config, id)) {
        Ok(e) => {
            println!("{}", serde_json::to_string(&e).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wagate: erasure failed (is wagate running? use POST /api/contacts/{{id}}/erase then): {e}");
            ExitCode::FAILURE
        }
    }
}

fn export_contact(id: &str) -> ExitCode {
    let config = match wagate::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wagate: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let exporter = match wagate::app::open_for_export(&config) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("wagate: cannot open the data directory (is wagate running? stop it, or use GET /api/contacts/{{id}}/export): {e}");
            return ExitCode::FAILURE;
        }
    };
    let contact = match exporter.store.contact_id(id) {
        Ok(Some(c)) => c,
        Ok(None) => {
            eprintln!("wagate: no contact {id}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("wagate: cannot read the state: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = wagate::privacy::export::write_export(&exporter, &contact, &mut out)
        .and_then(|c| Ok(std::io::Write::flush(&mut out).map(|()| c)?));
    match written {
        Ok(c) => {
            eprintln!(
                "exported {} message(s), {} delivery(ies), {} media file(s)",
                c.inbound + c.outbound,
                c.deliveries,
                c.media
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wagate: export failed (the output is incomplete): {e}");
            ExitCode::FAILURE
        }
    }
}

fn rotate_media_key() -> ExitCode {
    let config = match wagate::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wagate: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let path = config
        .media_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("media-keys"));
    let rotated = wagate::media::keys::KeyStore::open(&path, false).and_then(|k| k.rotate());
    match rotated {
        Ok(id) => {
            println!("new primary media key {id} in {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "wagate: cannot rotate the media key in {}: {e}",
                path.display()
            );
            ExitCode::FAILURE
        }
    }
}

fn check() -> ExitCode {
    let config = match wagate::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            println!("problem: invalid configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    let checks = wagate::app::check::run(&config);
    for c in &checks {
        let tag = match c.level {
            wagate::app::check::Level::Ok => "ok",
            wagate::app::check::Level::Warning => "warning",
            wagate::app::check::Level::Problem => "problem",
        };
        println!("{tag}: {}", c.message);
    }
    if checks
        .iter()
        .any(|c| c.level == wagate::app::check::Level::Problem)
    {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn verify_signature(header: Option<String>, file: &std::path::Path) -> ExitCode {
    let config = match wagate::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wagate: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let body = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("wagate: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let verifier = wagate::events::signature::Verifier::new(&config.app_secrets);
    let len = body.len() as u64;
    let d = wagate::webhook::diagnosis::diagnose(
        &verifier,
        header.as_deref().map(str::as_bytes),
        &body,
        None,
        len,
    );
    println!("verdict: {}", d.verdict.as_str());
    for f in &d.findings {
        println!("- {}: {}", f.code, f.message);
    }
    if d.verdict.is_accepted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn serve() -> ExitCode {
    let config = match wagate::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wagate: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    // Worker threads: one per core (fewer on a small VPS); blocking threads (store
    // calls, files) bounded by WAGATE_MEMORY, each holding its stack and heap pages.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(config.memory.blocking_threads())
        .build();
    match runtime {
        Ok(r) => r.block_on(run(config)).unwrap_or_else(|(why, code)| {
            eprintln!("wagate: {why}");
            ExitCode::from(code)
        }),
        Err(e) => {
            eprintln!("wagate: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why the server could not run, and the exit code that says so.
type Failed = (String, u8);

async fn run(config: wagate::Config) -> Result<ExitCode, Failed> {
    if config.app_secrets.is_empty() {
        tracing::warn!("META_APP_SECRET is not set: every POST /webhook will be kept as rejected");
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| (format!("cannot listen on {}: {e}", config.listen), 1))?;
    let tls = tls_of(&config)?;
    let acme = config.acme.clone().zip(tls.clone());
    let data_dir = config.data_dir.clone();
    let app = wagate::App::start(config)
        .await
        .map_err(|e| (format!("cannot start: {e}"), 1))?;
    // Started once the listener is bound: the CA's validation connects to it.
    let _acme = match acme
        .map(|(a, tls)| wagate::acme::Acme::start(a, &data_dir, tls, app.state.clock.clone()))
    {
        Some(Err(e)) => {
            app.shutdown().await;
            return Err((e.to_string(), 2));
        }
        Some(Ok(acme)) => {
            // Metrics and the dashboard show the certificate and renewals.
            let _ = app.state.acme.set(acme.status());
            Some(acme)
        }
        None => None,
    };
    match wagate::serve_with_tls(listener, app, tls, wagate::shutdown_signal()).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // 75 (EX_TEMPFAIL): systemd's Restart=on-failure starts a fresh process,
        // which reopens the store and re-applies from the journal.
        Err(e) => Err((
            format!("{e}; exiting with {} for a restart", e.exit_code()),
            e.exit_code(),
        )),
    }
}

/// Certificate files, or a resolver that ACME fills in; either reloads on SIGHUP.
fn tls_of(config: &wagate::Config) -> Result<Option<Arc<wagate::tls::TlsConfig>>, Failed> {
    let tls = match (&config.tls, &config.acme) {
        (Some((cert, key)), _) => {
            wagate::tls::TlsConfig::new(cert, key).map_err(|e| (e.to_string(), 2))?
        }
        (None, Some(_)) => wagate::tls::TlsConfig::managed().map_err(|e| (e.to_string(), 1))?,
        (None, None) => return Ok(None),
    };
    let tls = Arc::new(tls);
    wagate::reload_tls_on_sighup(tls.clone());
    Ok(Some(tls))
}
