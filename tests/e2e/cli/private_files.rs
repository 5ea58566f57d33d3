//! The CLI's files are private whatever the umask: the config dir 0700, `config.toml` and the
//! session file 0600; loosened ones are fixed on the next run, with a warning naming each.
//! Also: plain `http://` to another machine is warned about, and a scheme-less host is https.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{Backend, Pms, Server};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[tokio::test]
async fn files_are_private_under_umask_000_and_loose_ones_are_fixed() {
    let server = Server::start(Backend::Sqlite).await;
    let mut pms = Pms::new();
    pms.umask = Some("000");
    // A config dir that does not exist yet: created by the CLI.
    let dir = pms.dir().join("nested/pms");
    pms.set("PMS_CONFIG_DIR", dir.to_string_lossy());
    pms.login(&server).expect(0);
    let sessions = dir.join("sessions");
    let session = sessions.join(format!("{}.json", pms.profile));
    let config = dir.join("config.toml");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&sessions), 0o700);
    assert_eq!(mode(&config), 0o600);
    assert_eq!(mode(&session), 0o600);
    for (path, loose) in [(&dir, 0o755), (&config, 0o644), (&session, 0o644)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(loose)).expect("chmod");
    }
    let run = pms.run(&["whoami"], None).expect(0);
    for (path, was, now) in [
        (&dir, "755", "700"),
        (&config, "644", "600"),
        (&session, "644", "600"),
    ] {
        let line = format!(
            "warning: {} was accessible to other users (mode {was}): changed to {now}",
            path.display()
        );
        assert_eq!(run.stderr.matches(&line).count(), 1, "{line}\n{run:?}");
    }
    assert_eq!(
        (mode(&dir), mode(&config), mode(&session)),
        (0o700, 0o600, 0o600)
    );
    let again = pms.run(&["whoami"], None).expect(0);
    assert!(!again.stderr.contains("warning"), "{again:?}");
}

#[test]
fn plain_http_to_another_machine_warns_once_and_no_scheme_means_https() {
    let pms = Pms::new();
    // Not logged in: nothing is sent, but the warning comes first, once.
    let run = pms
        .run(&["--server", "http://10.255.255.1:4004", "whoami"], None)
        .expect(4);
    assert_eq!(
        run.stderr
            .matches("plain http:// to another machine")
            .count(),
        1,
        "{run:?}"
    );
    let bare = pms
        .run(&["--server", "pms.example:8443", "whoami"], None)
        .expect(4);
    assert!(bare.stderr.contains("https://pms.example:8443"), "{bare:?}");
    assert!(!bare.stderr.contains("warning"), "{bare:?}");
    let local = pms
        .run(&["--server", "127.0.0.1:1", "whoami"], None)
        .expect(4);
    assert!(local.stderr.contains("http://127.0.0.1:1"), "{local:?}");
    assert!(!local.stderr.contains("warning"), "{local:?}");
}
