//! Who runs a `mamori` command on the server's host, for the audit log.
//!
//! Every administration command records its actions as
//! `cli:NAME(uid=N)`: NAME is the login name from the environment (`USER`,
//! else `LOGNAME`; under `sudo`, the `SUDO_USER` who called it) and N the
//! real user id the kernel reports for the process (`/proc/self/status`,
//! else `id -u`). The name is only what the environment claims; the uid is
//! what the process really runs as, so both are kept. The label always
//! starts with `cli:` ([`mamori_core::access::CLI_ACTOR`] and a colon), which
//! is what `is_cli_actor` in the core recognises.

use mamori_core::access::CLI_ACTOR;

/// The longest login name kept (longer ones are dropped, not cut).
const MAX_NAME: usize = 64;

/// The audit actor of a command run now by this process.
pub fn cli_actor() -> String {
    let uid = real_uid();
    let var = |k: &str| std::env::var(k).ok();
    let sudo = if uid == Some(0) {
        var("SUDO_USER")
    } else {
        None
    };
    label(
        uid,
        sudo.as_deref(),
        var("USER").or_else(|| var("LOGNAME")).as_deref(),
    )
}

/// `cli:NAME(uid=N)`, `cli:NAME(sudo,uid=0)`, `cli:uid=N`, `cli:NAME` or
/// `cli:unknown`, from what is known.
/// The command line as the actor of what it does.
pub fn host_actor() -> mamori_core::access::Actor {
    mamori_core::access::Actor::Host(mamori_core::access::HostUser::new(&cli_actor()))
}

/// The command line as the operator of what no route offers.
pub fn host_operator() -> mamori_core::access::Operator {
    mamori_core::access::Operator::Host(mamori_core::access::HostUser::new(&cli_actor()))
}

fn label(uid: Option<u32>, sudo_user: Option<&str>, user: Option<&str>) -> String {
    let sudo_user = sudo_user.and_then(clean);
    let (name, via) = match sudo_user {
        Some(n) => (Some(n), "sudo,"),
        None => (user.and_then(clean), ""),
    };
    match (name, uid) {
        (Some(n), Some(u)) => format!("{CLI_ACTOR}:{n}({via}uid={u})"),
        (Some(n), None) => format!("{CLI_ACTOR}:{n}"),
        (None, Some(u)) => format!("{CLI_ACTOR}:uid={u}"),
        (None, None) => format!("{CLI_ACTOR}:unknown"),
    }
}

/// A login name as the audit log may carry it: 1-64 characters of
/// `[A-Za-z0-9._@-]` (what the environment says is not trusted to be
/// printable), else nothing.
fn clean(name: &str) -> Option<&str> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    ok.then_some(name)
}

/// The process's real user id: the first number of the `Uid:` line of
/// `/proc/self/status`, else what `id -u` prints.
fn real_uid() -> Option<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| uid_from_status(&s))
        .or_else(|| {
            let out = std::process::Command::new("id")
                .arg("-u")
                .stdin(std::process::Stdio::null())
                .output()
                .ok()?;
            if !out.status.success() {
                return None;
            }
            String::from_utf8(out.stdout).ok()?.trim().parse().ok()
        })
}

fn uid_from_status(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|u| u.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_user_and_the_uid() {
        assert_eq!(
            label(Some(1000), None, Some("alice")),
            "cli:alice(uid=1000)"
        );
        assert_eq!(
            label(Some(0), Some("alice"), Some("root")),
            "cli:alice(sudo,uid=0)"
        );
        assert_eq!(label(Some(1000), None, None), "cli:uid=1000");
        assert_eq!(label(None, None, Some("bob")), "cli:bob");
        assert_eq!(label(None, None, None), "cli:unknown");
        // A name the log should not carry is dropped; the uid stays.
        assert_eq!(
            label(Some(7), None, Some("evil\n2024 admin:root")),
            "cli:uid=7"
        );
        assert_eq!(label(Some(7), Some(""), Some("carol")), "cli:carol(uid=7)");
        for l in [
            label(Some(1), None, Some("a")),
            label(None, None, None),
            cli_actor(),
        ] {
            assert!(l.starts_with("cli:"), "{l}");
        }
    }

    #[test]
    fn the_real_uid_comes_from_proc() {
        let status = "Name:\tmamori\nUid:\t1000\t0\t0\t0\nGid:\t100\t100\t100\t100\n";
        assert_eq!(uid_from_status(status), Some(1000));
        assert_eq!(uid_from_status("Name:\tx\n"), None);
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(real_uid().is_some());
        }
    }
}
