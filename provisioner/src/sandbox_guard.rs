//! The sandbox's guard: a shell that `scripts/sandbox env` pointed at a sandbox (KONNICHIWA_SANDBOX
//! names its state directory) reaches that sandbox's emulator or nothing. When the sandbox is gone
//! (another `down`, a reboot) or AWS_ENDPOINT_URL was changed since, the provisioner refuses before
//! it loads any AWS configuration: it never falls through to the default credential chain (a
//! profile, the instance metadata service) and a real account.

use std::path::Path;

use crate::Error;

/// Set by `scripts/sandbox env` to the sandbox's state directory; unset by `env --unset`.
pub const SANDBOX_ENV: &str = "KONNICHIWA_SANDBOX";

/// Refuses when this process was meant for a sandbox that it would not reach.
pub fn check() -> Result<(), Error> {
    let Some(dir) = std::env::var_os(SANDBOX_ENV).filter(|d| !d.is_empty()) else { return Ok(()) };
    check_against(Path::new(&dir), std::env::var("AWS_ENDPOINT_URL").ok().as_deref())
}

fn check_against(dir: &Path, endpoint: Option<&str>) -> Result<(), Error> {
    let refuse = |why: String| {
        Err(Error::Usage(format!(
            "this shell was pointed at the sandbox in {} ({SANDBOX_ENV}), {why}: nothing was sent, to it or \
             to AWS. Start it (scripts/sandbox up) and run eval \"$(scripts/sandbox env)\" again, or leave \
             it for your own AWS credentials: eval \"$(scripts/sandbox env --unset)\"",
            dir.display()
        )))
    };
    // `scripts/sandbox up` writes the emulator's port; `down` removes the whole directory.
    let port = std::fs::read_to_string(dir.join("moto.port")).unwrap_or_default();
    let port = port.trim();
    if port.is_empty() || !dir.join("env").is_file() {
        return refuse("which is not running".to_owned());
    }
    let sandbox = format!("http://127.0.0.1:{port}");
    match endpoint {
        Some(e) if e.trim_end_matches('/') == sandbox => Ok(()),
        Some(e) => refuse(format!("but AWS_ENDPOINT_URL is {e}, not the sandbox's {sandbox}")),
        None => refuse(format!("but AWS_ENDPOINT_URL is not set (the sandbox's is {sandbox})")),
    }
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
        std::fs::write(dir.join("moto.port"), "5000\n").expect("port");
        assert!(refusal(&dir, Some("http://127.0.0.1:5000")).contains("not running"), "no env file yet");
        std::fs::write(dir.join("env"), "export …\n").expect("env");
        assert!(check_against(&dir, Some("http://127.0.0.1:5000")).is_ok());
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
