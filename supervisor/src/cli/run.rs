//! `warden run`: the settings resolved, then one session.
use anyhow::Context as _;
use warden::{session, settings, signals, target_user};

use super::args::RunArgs;

pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    if !nix::unistd::Uid::effective().is_root() {
        return through_service(&args);
    }
    let client = match (args.client_fd, args.handoff_fd) {
        // SAFETY: wardend left these descriptors to this process alone.
        (Some(link), Some(handoff)) => Some(unsafe { client_side(link, handoff)? }),
        _ => None,
    };
    let link = client.as_ref().map(|(c, _)| c.link.clone());
    let result = session(args, client);
    // The client exits with what it is told: after Warden's own error is on the terminal.
    if let Some(link) = link {
        let status = match &result {
            Ok(status) => *status,
            Err(e) => {
                eprintln!("warden: {e:#}");
                125
            }
        };
        link.send(&warden::service::protocol::Reply::Exited { status });
        return Ok(status);
    }
    result
}

/// Without root: the Warden service starts the session, with this very command line.
fn through_service(args: &RunArgs) -> anyhow::Result<i32> {
    let user = target_user::resolve(None)?;
    let config =
        args.settings.config.clone().unwrap_or_else(|| {
            warden_requirements::user_config::default_user_config_path(&user.home)
        });
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    warden::service::client::run(&args.socket.socket, argv, &config)
}

/// # Safety
/// The descriptors are wardend's hand-over to this process, owned by nothing else here.
unsafe fn client_side(
    link: i32,
    handoff: i32,
) -> anyhow::Result<(
    session::ClientSide,
    Option<warden::service::protocol::UserConfigText>,
)> {
    use warden::service::session_link;
    // SAFETY: per the contract above.
    let handoff =
        unsafe { session_link::read_handoff(handoff) }.context("the service's hand-off")?;
    // SAFETY: per the contract above.
    let (link, signals) =
        unsafe { session_link::ClientLink::adopt(link) }.context("the client's connection")?;
    Ok((
        session::ClientSide {
            link: std::sync::Arc::new(link),
            signals,
            // Warden's own variables are Warden's to set: a user's would reach the launcher,
            // which runs as root before it confines itself.
            env: handoff
                .env
                .into_iter()
                .filter(|(k, _)| !k.0.starts_with(b"WARDEN_"))
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        },
        handoff.user_config,
    ))
}

fn session(
    args: RunArgs,
    client: Option<(
        session::ClientSide,
        Option<warden::service::protocol::UserConfigText>,
    )>,
) -> anyhow::Result<i32> {
    let RunArgs {
        user,
        events,
        quiet,
        state,
        cgroup_root,
        settings: flags,
        run_dir,
        ring_buffer_kib,
        max_pids,
        export_grace_secs,
        hook_tier,
        pass_env,
        credentials,
        credential_store,
        credential_ca,
        command,
        approvals,
        client_fd: _,
        handoff_fd: _,
        socket: _,
    } = args;
    let (client, given_config) = match client {
        Some((c, config)) => (Some(c), Some(config)),
        None => (None, None),
    };

    let mut flags = flags;
    flags.approval_policy = approvals.approval_policy;
    flags.reviewer = approvals.reviewer;
    let user = target_user::resolve(user.as_deref())?;
    let user_config = match given_config {
        Some(given) => settings::UserConfigSource::Given(given),
        None => settings::UserConfigSource::File(flags.config.clone().unwrap_or_else(|| {
            warden_requirements::user_config::default_user_config_path(&user.home)
        })),
    };
    let sources = flags.requirements.sources(user_config)?;
    let mut overrides = flags.overrides();
    overrides.pass_env = pass_env;
    let loaded = settings::load(&sources, &overrides, &user.home)?;
    let network = settings::network(&loaded.settings, flags.network, !flags.no_default_domains)?;
    let workspace = match &flags.workspace {
        Some(w) => w.clone(),
        None => std::env::current_dir().context("the current directory (or give --workspace)")?,
    };
    let workspace = std::fs::canonicalize(&workspace)
        .with_context(|| format!("workspace {}", workspace.display()))?;
    let sandbox = settings::sandbox(&loaded.settings, workspace, !flags.no_default_exec_rules)?;
    settings::check_unix_sockets(&network, &sandbox)?;
    let approvals = settings::approvals(
        &loaded.settings,
        std::time::Duration::from_secs(approvals.approval_timeout_secs),
        std::time::Duration::from_secs(approvals.reviewer_timeout_secs),
        approvals.unattended,
        approvals.approvers_group.as_deref(),
    )?;
    let telemetry = settings::telemetry(
        &loaded.settings,
        std::time::Duration::from_secs(export_grace_secs),
    );
    let credentials = warden::credentials::CredentialOptions {
        names: credentials,
        store: credential_store.choice,
        upstream_ca: credential_ca,
        allowed_deliveries: warden::credentials_cli::allowed_deliveries(&loaded.effective),
        login: warden::credentials::login::LoginPolicy::from_requirements(
            &loaded.effective,
            state.state_dir.join(warden::credentials::JWKS_CACHE),
        ),
    };
    // Before any thread exists, so that every runtime thread inherits the mask.
    signals::block().context("blocking signals")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(session::run(session::RunOptions {
        command,
        user,
        live: events,
        quiet,
        state_dir: state.state_dir,
        cgroup_root,
        ring_buffer_bytes: Some(ring_buffer_kib * 1024),
        run_dir: run_dir.run_dir,
        network,
        sandbox,
        approvals,
        max_pids,
        settings_files: loaded.files,
        settings_warnings: loaded.warnings,
        requirement_paths: sources.layers.clone(),
        telemetry,
        log_prompts: loaded.settings.telemetry.log_prompts.value,
        required_layers: loaded.settings.required_layers.clone(),
        hook_tier,
        environment: loaded.settings.environment.clone(),
        credentials,
        triage: warden::live_triage::TriagePolicy::from_requirements(&loaded.effective),
        client,
    }))
}
