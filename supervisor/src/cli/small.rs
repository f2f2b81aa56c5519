//! The commands that fit in a screen: events, requirements, approvals, recover, doctor,
//! credentials.
use warden::{audit_log, doctor, log_view, recovery};

use super::args::{
    ApprovalsCommand, CredentialsCommand, DoctorArgs, EventsArgs, RecoverArgs, RequirementsCommand,
};

pub fn events(args: EventsArgs) -> anyhow::Result<i32> {
    let EventsArgs {
        session,
        view,
        json,
        state,
    } = args;

    let path = log_view::locate(&session, &state.state_dir)?;
    let records = audit_log::read(&path)?;
    log_view::print(&records, if json { log_view::View::Json } else { view })?;
    Ok(0)
}

pub fn requirements(cmd: RequirementsCommand) -> anyhow::Result<i32> {
    use warden::requirements_cli as r;
    match cmd {
        RequirementsCommand::Check { files } => {
            return Ok(if r::check(&files)? { 0 } else { 1 });
        }
        RequirementsCommand::Show { json, paths, .. } => {
            // The user's configuration is not a requirement layer.
            r::show_effective(
                &paths.sources(warden::settings::UserConfigSource::Given(None))?,
                json,
            )?
        }
        RequirementsCommand::Keygen { prefix } => r::keygen(&prefix)?,
        RequirementsCommand::Sign { key, bundle } => r::sign_bundle(&key, &bundle)?,
        RequirementsCommand::Verify {
            public_key,
            bundle,
            store,
        } => r::verify_bundle(&public_key, &bundle, store.as_deref())?,
    }
    Ok(0)
}

pub fn approvals(cmd: ApprovalsCommand) -> anyhow::Result<i32> {
    use warden::approvals_cli as a;
    match cmd {
        ApprovalsCommand::List { json, run_dir } => a::list(&run_dir.run_dir, json),
        ApprovalsCommand::Approve {
            id,
            session,
            reason,
            run_dir,
        } => a::answer(&run_dir.run_dir, &id, true, session, reason),
        ApprovalsCommand::Deny {
            id,
            reason,
            run_dir,
        } => a::answer(&run_dir.run_dir, &id, false, false, reason),
        ApprovalsCommand::Prompt { tty } => {
            warden::approvals::terminal::prompt_main(&tty)?;
            Ok(0)
        }
    }
}

pub fn recover(args: RecoverArgs) -> anyhow::Result<i32> {
    let RecoverArgs { run_dir } = args;

    let ended = recovery::recover(&run_dir.run_dir);
    for r in &ended {
        match &r.error {
            None => println!("ended session {}: {} processes killed", r.id, r.killed),
            Some(e) => println!("session {}: {e}", r.id),
        }
    }
    if ended.is_empty() {
        println!("no orphaned session");
    }
    Ok(if ended.iter().any(|r| r.error.is_some()) {
        1
    } else {
        0
    })
}

pub fn doctor(args: DoctorArgs) -> anyhow::Result<i32> {
    let DoctorArgs { state } = args;

    let (checks, tier) = doctor::run_checks(&state.state_dir);
    let (table, ok) = doctor::report(&checks);
    print!("{table}");
    print!("{}", doctor::report_tiers(tier.as_ref()));
    print!("{}", doctor::report_layers(&doctor::layers(tier.as_ref())));
    print!("{}", doctor::verdict(ok));
    Ok(if ok { 0 } else { 1 })
}

pub fn credentials(cmd: CredentialsCommand) -> anyhow::Result<i32> {
    use warden::credentials_cli as c;
    match cmd {
        CredentialsCommand::Add(a) => {
            let metadata = warden_credentials::Metadata {
                provider: a.provider,
                hosts: a.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
                delivery: a.delivery,
                header: Some(a.header.to_ascii_lowercase()),
                env: a.env,
                login_method: a.login_method,
                workspace: a.workspace,
                expires_at: a.expires.as_deref().map(c::parse_expiry).transpose()?,
                added_at: time::OffsetDateTime::now_utc(),
            };
            let new = c::NewCredential {
                name: a.name,
                metadata,
                replace: a.replace,
            };
            c::add(
                new,
                a.store.choice,
                &a.paths
                    .sources(warden::settings::UserConfigSource::Given(None))?,
                &a.state.state_dir,
            )
        }
        CredentialsCommand::List { json, store } => c::list(store.choice, json),
        CredentialsCommand::Show {
            name,
            reveal,
            json,
            store,
        } => c::show(store.choice, &name, reveal, json),
        CredentialsCommand::Remove { name, store } => c::remove(store.choice, &name),
        CredentialsCommand::SessionExport { store, names } => {
            warden::credentials::export(store.choice, &names)
        }
        CredentialsCommand::Test {
            name,
            store,
            paths,
            state,
        } => c::test(
            store.choice,
            name.as_deref(),
            &paths.sources(warden::settings::UserConfigSource::Given(None))?,
            &state.state_dir,
        ),
    }
}
