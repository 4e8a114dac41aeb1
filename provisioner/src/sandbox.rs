//! What the provisioner knows of the sandbox (`scripts/sandbox`). Its guard: a shell that
//! `scripts/sandbox env` pointed at a sandbox (KONNICHIWA_SANDBOX names its state directory)
//! reaches that sandbox's emulator or nothing. When the sandbox is gone (another `down`, a
//! reboot) or AWS_ENDPOINT_URL was changed since, the provisioner refuses before it loads any AWS
//! configuration: it never falls through to the default credential chain (a profile, the instance
//! metadata service) and a real account. And its notes: where the emulator shows what it does not
//! do (a load balancer's URL, tasks, log lines), what to look at instead.

use std::path::Path;

use crate::Error;

/// Set by `scripts/sandbox env` to the sandbox's state directory; unset by `env --unset`.
pub const SANDBOX_ENV: &str = "KONNICHIWA_SANDBOX";

/// In a shell pointed at a sandbox, what to say next to what the emulator shows but does not do:
/// its load balancer's URL answers nothing and it runs no task; the service runs under podman at
/// API_URL (set by `scripts/sandbox env`), and its lines are podman's.
pub fn note(about: Topic) -> Option<String> {
    std::env::var_os(SANDBOX_ENV).filter(|d| !d.is_empty())?;
    let local = std::env::var("API_URL").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "$API_URL".to_owned());
    Some(match about {
        Topic::Url => format!(
            "in the sandbox this load balancer's URL answers nothing (the emulator makes no load balancer): the \
             service answers at {local}"
        ),
        Topic::Tasks => format!(
            "the emulator runs no tasks, so its counts stay pending: in the sandbox the service runs under podman \
             at {local} (scripts/sandbox logs shows its lines)"
        ),
        Topic::Logs => {
            "the emulator keeps no log lines: in the sandbox the service's are podman's: scripts/sandbox logs"
                .to_owned()
        }
    })
}

/// What a sandbox note is about.
#[derive(Debug, Clone, Copy)]
pub enum Topic {
    Url,
    Tasks,
    Logs,
}

/// Refuses when this process was meant for a sandbox that it would not reach.
/// Returns the sandbox's endpoint when there is one: the caller pins every client to it and to
/// the emulator's static credentials, so that no per-service endpoint variable
/// (AWS_ENDPOINT_URL_<SERVICE>), profile `services` section or `ignore_configured_endpoint_urls`
/// sends a call elsewhere and no credential source is asked.
pub fn check() -> Result<Option<String>, Error> {
    let Some(dir) = std::env::var_os(SANDBOX_ENV).filter(|d| !d.is_empty()) else { return Ok(None) };
    check_against(Path::new(&dir), std::env::var("AWS_ENDPOINT_URL").ok().as_deref()).map(Some)
}

fn check_against(dir: &Path, endpoint: Option<&str>) -> Result<String, Error> {
    let refuse = |why: String| {
        Err(Error::Usage(format!(
            "this shell was pointed at the sandbox in {} ({SANDBOX_ENV}), {why}: nothing was sent, to it or \
             to AWS. Start it (scripts/sandbox up) and run eval \"$(scripts/sandbox env)\" again, or leave \
             it for your own AWS credentials: eval \"$(scripts/sandbox env --unset)\"",
            dir.display()
        )))
    };
    // Another user could have made the directory first (it is under /var/tmp): only ours, and
    // writable by no one else, is believed.
    if let Some(why) = not_private(dir) {
        return refuse(why);
    }
    // `scripts/sandbox up` writes the emulator's port; `down` removes the whole directory.
    let port = std::fs::read_to_string(dir.join("moto.port")).unwrap_or_default();
    let port = port.trim();
    if port.is_empty() || !dir.join("env").is_file() {
        return refuse("which is not running".to_owned());
    }
    let sandbox = format!("http://127.0.0.1:{port}");
    match endpoint {
        Some(e) if e.trim_end_matches('/') == sandbox => Ok(sandbox),
        Some(e) => refuse(format!("but AWS_ENDPOINT_URL is {e}, not the sandbox's {sandbox}")),
        None => refuse(format!("but AWS_ENDPOINT_URL is not set (the sandbox's is {sandbox})")),
    }
}

/// Why `dir` is not this user's own sandbox directory, if it exists and is not.
fn not_private(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).ok()?;
    // /proc/self belongs to the process's user.
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok()?;
    if meta.uid() != me {
        return Some(format!(
            "but that directory belongs to another user (uid {}): it is not your sandbox",
            meta.uid()
        ));
    }
    (meta.mode() & 0o022 != 0)
        .then(|| format!("but others may write to that directory (mode {:o})", meta.mode() & 0o777))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(dir: &Path, endpoint: Option<&str>) -> String {
        check_against(dir, endpoint).expect_err("refused").to_string()
    }

    #[test]
    fn only_the_running_sandboxs_own_endpoint_is_let_through() {
        let dir = std::env::temp_dir().join(format!("konnichiwa-guard-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let gone = refusal(&dir, Some("http://127.0.0.1:5000"));
        assert!(gone.contains("which is not running") && gone.contains(&dir.display().to_string()), "{gone}");
        assert!(gone.contains("scripts/sandbox env --unset"), "{gone}");

        std::fs::create_dir_all(&dir).expect("dir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        std::fs::write(dir.join("moto.port"), "5000\n").expect("port");
        std::fs::write(dir.join("env"), "export …\n").expect("env");
        let open = refusal(&dir, Some("http://127.0.0.1:5000"));
        assert!(open.contains("others may write to that directory (mode 777)"), "{open}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::fs::remove_file(dir.join("env")).expect("rm env");
        assert!(refusal(&dir, Some("http://127.0.0.1:5000")).contains("not running"), "no env file yet");
        std::fs::write(dir.join("env"), "export …\n").expect("env");
        assert_eq!(check_against(&dir, Some("http://127.0.0.1:5000")).ok().as_deref(), Some("http://127.0.0.1:5000"));
        assert!(check_against(&dir, Some("http://127.0.0.1:5000/")).is_ok());
        let other = refusal(&dir, Some("https://ecs.ap-northeast-1.amazonaws.com"));
        assert!(
            other.contains("AWS_ENDPOINT_URL is https://ecs.") && other.contains("http://127.0.0.1:5000"),
            "{other}"
        );
        assert!(refusal(&dir, None).contains("AWS_ENDPOINT_URL is not set"));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
