//! Running an evaluation case's own commands (`critic eval --tests`): `sh -c` in the case's
//! checkout, with a deadline that kills the command's whole process group.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// A command's end: whether it exited 0, the tail of its output, and all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub ok: bool,
    pub tail: String,
    pub output: String,
}

impl Ran {
    fn failed(why: String) -> Ran {
        Ran {
            ok: false,
            tail: why.clone(),
            output: why,
        }
    }
}

/// Output kept of a failing command.
const TAIL_BYTES: usize = 4000;

/// Runs `cmd` with `sh -c` in `dir`, in a process group of its own that is killed whole
/// after `timeout` (a test runner's children too, not only the shell). `CRITIC_TEST_FILES`
/// holds the files the suggested tests were written to, space-separated, so a command can run
/// only them.
pub async fn shell(dir: &Path, cmd: &str, files: &[String], timeout: Duration) -> Ran {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .env("CRITIC_TEST_FILES", files.join(" "))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return Ran::failed(format!("could not start `sh -c {cmd}`: {e}")),
    };
    let group = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            Ran {
                ok: out.status.success(),
                tail: tail(&text),
                output: text,
            }
        }
        Ok(Err(e)) => Ran::failed(format!("`{cmd}` failed: {e}")),
        Err(_) => {
            if let Some(pid) = group {
                // The whole group: `kill -KILL -PID`.
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status();
            }
            Ran::failed(format!(
                "`{cmd}` did not finish within {} s",
                timeout.as_secs()
            ))
        }
    }
}

fn tail(text: &str) -> String {
    let mut start = text.len().saturating_sub(TAIL_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_report_their_exit_and_the_end_of_their_output() {
        let dir = tempfile::tempdir().expect("dir");
        let files = vec!["a b".to_string()];
        let ok = shell(
            dir.path(),
            "echo \"$CRITIC_TEST_FILES\"",
            &files,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!((ok.ok, ok.tail.as_str()), (true, "a b\n"));
        let failed = shell(
            dir.path(),
            "echo broken >&2; exit 3",
            &[],
            Duration::from_secs(10),
        )
        .await;
        assert!(!failed.ok);
        assert_eq!(failed.tail, "broken\n");
        // The whole process group goes: a runner's child would otherwise live on.
        let slow = shell(
            dir.path(),
            "(sleep 1; touch left-behind) & sleep 5",
            &[],
            Duration::from_millis(200),
        )
        .await;
        assert!(!slow.ok && slow.tail.contains("did not finish"), "{slow:?}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!dir.path().join("left-behind").exists());
    }
}
