//! Which environment variables must not reach the agent because their names say they hold a
//! secret. Threat: the user's shell exports tokens and keys (`GITHUB_TOKEN`,
//! `AWS_SECRET_ACCESS_KEY`, `OPENAI_API_KEY`); an agent that inherits them can use them, or
//! send them out through any channel the allowlist leaves open. A credential is handed over
//! deliberately (by the credential store), never by inheritance.
//!
//! Names are split into words at `_`; a name is secret when a word ends with one of the secret
//! words (`GITHUB_TOKEN`, `PGPASSWORD`) or two adjacent words make a key name (`API_KEY`,
//! `ACCESS_KEY`, `PRIVATE_KEY`), or it is one of the agents' and keyrings' own (`KRB5CCNAME`,
//! `GNOME_KEYRING_CONTROL`). `TOKENIZERS_PARALLELISM` is not: no word ends with `TOKEN`.

/// A word ending with one of these makes the name secret.
const SECRET_WORD_ENDINGS: &[&str] = &[
    "TOKEN",
    "TOKENS",
    "SECRET",
    "SECRETS",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "COOKIE",
];

/// Two adjacent words that name a key.
const KEY_PAIRS: &[(&str, &str)] = &[
    ("API", "KEY"),
    ("ACCESS", "KEY"),
    ("PRIVATE", "KEY"),
    ("SECRET", "KEY"),
    ("SIGNING", "KEY"),
    ("ENCRYPTION", "KEY"),
    ("CLIENT", "SECRET"),
    ("AUTH", "KEY"),
];

/// Names that hand over a keyring, an agent or a ticket rather than a value.
const SECRET_NAMES: &[&str] = &[
    "GNOME_KEYRING_CONTROL",
    "GNOME_KEYRING_PID",
    "KRB5CCNAME",
    "SSH_AGENT_PID",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "SUDO_ASKPASS",
];

/// Whether the variable's name says it holds a secret.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if SECRET_NAMES.contains(&upper.as_str()) {
        return true;
    }
    let words: Vec<&str> = upper.split('_').filter(|w| !w.is_empty()).collect();
    words
        .iter()
        .any(|w| SECRET_WORD_ENDINGS.iter().any(|end| w.ends_with(end)))
        || words
            .windows(2)
            .any(|pair| KEY_PAIRS.contains(&(pair[0], pair[1])))
}

/// The names that look secret, sorted and without repeats.
pub fn secret_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = names
        .into_iter()
        .filter(|n| looks_secret(n))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for name in [
            "GITHUB_TOKEN",
            "GH_TOKEN",
            "NPM_TOKEN",
            "HF_TOKEN",
            "VAULT_TOKEN",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "AZURE_CLIENT_SECRET",
            "PGPASSWORD",
            "MYSQL_PWD_PASSWORD",
            "DOCKER_PASSWORD",
            "TF_VAR_db_password",
            "STRIPE_SECRET",
            "SENTRY_AUTH_TOKEN",
            "CODECOV_TOKEN",
            "GPG_PASSPHRASE",
            "SSH_PRIVATE_KEY",
            "COSIGN_PRIVATE_KEY",
            "KRB5CCNAME",
            "GNOME_KEYRING_CONTROL",
            "github_token",
            "_TOKEN",
            "MYAPIKEY",
            // Not a value, but where the password store is: conservative on purpose.
            "PASSWORD_STORE_DIR",
        ] {
            assert!(looks_secret(name), "{name}");
        }
    }

    #[test]
    fn ordinary_names() {
        for name in [
            "PATH",
            "HOME",
            "LANG",
            "TERM",
            "EDITOR",
            "TOKENIZERS_PARALLELISM",
            "CARGO_HOME",
            "RUSTUP_TOOLCHAIN",
            "KEYTIMEOUT",
            "SSH_CONNECTION",
            "PYTHONPATH",
            "NODE_OPTIONS",
            "API_URL",
            "ACCESS_LOG",
            "XDG_RUNTIME_DIR",
            "",
        ] {
            assert!(!looks_secret(name), "{name}");
        }
    }
}
