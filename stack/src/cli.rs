//! What every command-line tool of the toolchain does before its work: a closed standard output
//! or error (`provisioner outputs | head -5`) ends the program quietly, as Unix tools end,
//! instead of a panic and a backtrace.

use std::any::Any;

/// The exit status of a program stopped by writing into a closed pipe: 128 + SIGPIPE, what a
/// shell reports for `yes | head -1`'s `yes`.
pub const BROKEN_PIPE_EXIT: i32 = 141;

/// Installs a panic hook that ends the process with [`BROKEN_PIPE_EXIT`], saying nothing, when
/// `print!`/`println!` found standard output closed; every other panic goes to the hook before
/// (its message and backtrace as usual). Called first thing in `main`.
pub fn stop_quietly_on_broken_pipe() {
    let earlier = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if is_closed_stdout(info.payload()) {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        earlier(info);
    }));
}

/// True for the standard library's "failed printing to stdout: Broken pipe (os error 32)" (or
/// stderr's: `tool 2>&1 | head`).
fn is_closed_stdout(payload: &(dyn Any + Send)) -> bool {
    let text = match (payload.downcast_ref::<String>(), payload.downcast_ref::<&str>()) {
        (Some(s), _) => s.as_str(),
        (None, Some(s)) => s,
        (None, None) => return false,
    };
    (text.starts_with("failed printing to stdout") || text.starts_with("failed printing to stderr"))
        && text.contains("Broken pipe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_closed_stdout_is_stopped_quietly() {
        let closed: Box<dyn Any + Send> = Box::new("failed printing to stdout: Broken pipe (os error 32)".to_owned());
        assert!(is_closed_stdout(closed.as_ref()));
        let closed_err: Box<dyn Any + Send> =
            Box::new("failed printing to stderr: Broken pipe (os error 32)".to_owned());
        assert!(is_closed_stdout(closed_err.as_ref()));
        for other in ["failed printing to stdout: No space left on device (os error 28)", "index out of bounds"] {
            let payload: Box<dyn Any + Send> = Box::new(other);
            assert!(!is_closed_stdout(payload.as_ref()), "{other}");
        }
        let not_text: Box<dyn Any + Send> = Box::new(7_u8);
        assert!(!is_closed_stdout(not_text.as_ref()));
    }
}
