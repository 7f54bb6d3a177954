//! Command-line arguments (clap). Usage errors exit with clap's code 2.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use minibit_peer::cli_common::{BindAddr, DiscoveryArgs, Rate, Verbosity};

/// Join a BitTorrent swarm: download a torrent, verify every piece, then seed it.
///
/// `minibit-peer SOURCE [NAME]` is short for `minibit-peer download SOURCE [NAME]`.
#[derive(Debug, Parser)]
#[command(
    name = "minibit-peer",
    version,
    subcommand_negates_reqs = true,
    override_usage = "minibit-peer [OPTIONS] <SOURCE> [NAME]\n       minibit-peer <COMMAND> [ARGS]"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub download: DownloadArgs,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

/// The ids of [`DownloadArgs`]' arguments, refused before another
/// subcommand (with [`DiscoveryArgs::IDS`]).
const DOWNLOAD_ARGS: [&str; 11] = [
    "source",
    "name",
    "output",
    "bind",
    "port",
    "exit_on_complete",
    "only",
    "state",
    "resume_interval_ms",
    "download_limit",
    "upload_limit",
];

impl Cli {
    /// Parses `args`; a download option given before another subcommand
    /// (`minibit-peer -o dir info x.torrent`) is a usage error, never ignored.
    ///
    /// # Errors
    /// clap's error (exit code 2 through [`clap::Error::exit`]).
    pub fn try_parse_checked<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::parser::ValueSource;
        use clap::{CommandFactory, FromArgMatches};
        let mut command = Self::command();
        let matches = command.try_get_matches_from_mut(args)?;
        if let Some((name, _)) = matches.subcommand() {
            let stray = DOWNLOAD_ARGS
                .iter()
                .chain(&DiscoveryArgs::IDS)
                .find(|id| matches.value_source(id) == Some(ValueSource::CommandLine));
            if let Some(id) = stray {
                return Err(command.error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "--{} goes with download, not with {name}",
                        id.replace('_', "-")
                    ),
                ));
            }
        }
        Self::from_arg_matches(&matches)
    }

    /// The command to run (a bare SOURCE means `download`).
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Download(self.download))
    }
}

/// Download (and seed) one torrent.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// A .torrent file, the http(s):// URL of a .torrent, or a tracker's
    /// base URL followed by NAME.
    #[arg(required = true)]
    pub source: Option<String>,
    /// With a tracker URL: the exact name of a torrent in its catalogue.
    pub name: Option<String>,
    /// Folder to download into.
    #[arg(short, long, default_value = ".")]
    pub output: PathBuf,
    /// Where to listen for peers, IP[:PORT] (no port or 0: a free port).
    /// 0.0.0.0 is every interface (a peer must be reachable to seed);
    /// 127.0.0.1 keeps it local.
    #[arg(long, value_name = "IP[:PORT]", default_value = "0.0.0.0")]
    pub bind: BindAddr,
    /// Port to listen on for peers (short for --bind's PORT).
    #[arg(long)]
    pub port: Option<u16>,
    /// Exit once every piece is verified (after announcing `completed`)
    /// instead of seeding until Ctrl-C.
    #[arg(long)]
    pub exit_on_complete: bool,
    /// Download only the files whose path inside the torrent matches GLOB
    /// (repeat for more; `*` also matches `/`; `minibit-peer files SOURCE`
    /// lists the paths). The other files are not created; bytes of theirs
    /// that share a piece with a selected file go to a part file in the
    /// state folder. Run again with more globs to fetch more.
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    /// Folder for the resume data and part files [default: .minibit inside
    /// the output folder].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Least time between two saves of the resume data, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000, hide = true)]
    pub resume_interval_ms: u64,
    /// Download rate limit, payload bytes per second with an optional
    /// binary suffix K, M or G (e.g. 8M = 8 MiB/s); 0 is unlimited.
    #[arg(long, value_name = "RATE", default_value = "0")]
    pub download_limit: Rate,
    /// Upload rate limit, payload bytes per second with an optional
    /// binary suffix K, M or G (e.g. 512K); 0 is unlimited.
    #[arg(long, value_name = "RATE", default_value = "0")]
    pub upload_limit: Rate,
    /// Peer discovery past the trackers (DHT, LSD).
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
}

/// Make a .torrent.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The file or folder to share.
    pub path: PathBuf,
    /// Where to write the .torrent [default: NAME.torrent in the current folder].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Tracker announce URL (repeat for more trackers, one tier each, BEP 12).
    #[arg(long = "tracker", short = 't', value_name = "URL")]
    pub trackers: Vec<String>,
    /// Piece length in bytes, a power of two from 16384 (16 KiB) to
    /// 16777216 (16 MiB) [default: chosen from the size, ~1000-2000 pieces].
    #[arg(long, value_name = "BYTES")]
    pub piece_length: Option<u32>,
    /// Mark the torrent private (BEP 27: peers only from its trackers).
    #[arg(long)]
    pub private: bool,
    /// A comment stored in the .torrent.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download a torrent, verify every piece, then seed it (the default command).
    Download(DownloadArgs),
    /// Make a .torrent of a file or a folder.
    Create(CreateArgs),
    /// List a tracker's torrents whose name contains QUERY.
    Search {
        /// The tracker's base URL, e.g. http://host:6969.
        tracker: String,
        /// Part of the name (empty: everything).
        query: Option<String>,
    },
    /// List the files of a torrent: index, size and path inside the
    /// torrent (what --only matches).
    Files {
        /// A .torrent file, the http(s):// URL of a .torrent, or a tracker's
        /// base URL followed by NAME.
        source: String,
        /// With a tracker URL: the exact name of a torrent in its catalogue.
        name: Option<String>,
    },
    /// Show what a .torrent holds.
    Info {
        /// The .torrent file.
        torrent: PathBuf,
    },
    /// Run as a service: many torrents kept in a state folder, driven over
    /// an HTTP API and a page (`minibit-peer add|list|pause|resume|remove`
    /// and `subscribe|unsubscribe|subscriptions` talk to it).
    Daemon(DaemonArgs),
    /// Add a torrent to a running daemon; prints its info-hash.
    Add(AddArgs),
    /// List a running daemon's torrents: info-hash, state, progress,
    /// rates, peers, name.
    List {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Pause torrents of a running daemon.
    Pause(TargetArgs),
    /// Resume paused torrents of a running daemon.
    Resume(TargetArgs),
    /// Remove torrents from a running daemon.
    Remove {
        #[command(flatten)]
        target: TargetArgs,
        /// Also delete the downloaded files.
        #[arg(long)]
        delete_data: bool,
    },
    /// Make a running daemon follow a minibit tracker's catalogue: every
    /// publication whose name matches GLOB (every one without #GLOB) is
    /// downloaded, then seeded (like `daemon --subscribe`).
    Subscribe(SubscriptionArgs),
    /// Stop following a subscription of a running daemon (the torrents it
    /// added stay).
    Unsubscribe(SubscriptionArgs),
    /// List a running daemon's subscriptions, one `TRACKER_URL[#GLOB]` a line.
    Subscriptions {
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// Environment variable holding the daemon's API token for the remote verbs
/// and `daemon --api-token`.
pub const TOKEN_VAR: &str = "MINIBIT_DAEMON_TOKEN";

/// `minibit-peer daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// State folder: the database of torrents, their resume data, the API
    /// token (created if missing).
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// Where the HTTP API and page listen (keep it on 127.0.0.1 unless a
    /// proxy guards it).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9091")]
    pub api: std::net::SocketAddr,
    /// Where to listen for peers, IP[:PORT] (no port or 0: a free port).
    #[arg(long, value_name = "IP[:PORT]", default_value = "0.0.0.0")]
    pub bind: BindAddr,
    /// Port to listen on for peers (short for --bind's PORT).
    #[arg(long)]
    pub port: Option<u16>,
    /// Every torrent's save folder is inside this one [default: downloads
    /// inside the state folder].
    #[arg(long, value_name = "DIR")]
    pub download_root: Option<PathBuf>,
    /// The API token (16-256 visible characters) [default: generated at
    /// first start, kept in STATE/token].
    #[arg(long, value_name = "TOKEN", env = TOKEN_VAR, hide_env_values = true)]
    pub api_token: Option<String>,
    /// Follow a minibit tracker's catalogue: every publication whose name
    /// matches GLOB (every one without #GLOB) is downloaded into the
    /// download root, then seeded; a removal on the tracker keeps the copy.
    /// Repeat for more; kept in the state folder, so a restart without it
    /// goes on following.
    #[arg(long, value_name = "TRACKER_URL[#GLOB]")]
    pub subscribe: Vec<minibit_peer::daemon::subscribe::Subscription>,
    /// Peer discovery past the trackers (DHT, LSD).
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
}

/// How the remote verbs reach a daemon.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// The daemon's API.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9091")]
    pub api: String,
    /// The daemon's API token (its STATE/token file, or the one in its login URL).
    #[arg(long, value_name = "TOKEN", env = TOKEN_VAR, hide_env_values = true)]
    pub token: Option<String>,
}

/// The torrents a remote verb acts on.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Info-hashes (40 hex digits) or exact names.
    #[arg(required = true, value_name = "TORRENT")]
    pub torrents: Vec<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `minibit-peer subscribe|unsubscribe`.
#[derive(Debug, Args)]
pub struct SubscriptionArgs {
    /// The tracker's base URL, with `#GLOB` to take only the publications
    /// whose name matches (`globset` syntax, case-sensitive).
    #[arg(value_name = "TRACKER_URL[#GLOB]")]
    pub subscription: minibit_peer::daemon::subscribe::Subscription,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `minibit-peer add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// A .torrent file, the http(s):// URL of one (fetched by the daemon),
    /// or a magnet link.
    pub source: String,
    /// Folder under the daemon's download root to save into.
    #[arg(long, value_name = "DIR")]
    pub save_dir: Option<String>,
    /// Download only the files matching GLOB or with index N (repeat for more).
    #[arg(long, value_name = "GLOB|N")]
    pub only: Vec<String>,
    /// Add it paused.
    #[arg(long)]
    pub paused: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn download(args: &[&str]) -> DownloadArgs {
        match Cli::try_parse_checked(args).unwrap().into_command() {
            Command::Download(args) => args,
            other => panic!("not a download: {other:?}"),
        }
    }

    #[test]
    fn the_daemon_takes_the_discovery_flags_and_download_keeps_its_own() {
        let cli = Cli::try_parse_checked([
            "minibit-peer",
            "daemon",
            "--state",
            "st",
            "--no-lsd",
            "--dht-bootstrap",
            "127.0.0.1:6881",
        ])
        .unwrap();
        let Some(Command::Daemon(daemon)) = cli.command else {
            panic!("not the daemon");
        };
        assert!(daemon.discovery.no_lsd && !daemon.discovery.no_dht);
        assert_eq!(daemon.discovery.dht_bootstrap, ["127.0.0.1:6881"]);
        let args = download(&["minibit-peer", "--no-dht", "x.torrent"]);
        assert!(args.discovery.no_dht && !args.discovery.no_lsd);
        // Before another subcommand a download flag is an error, not ignored.
        let err = Cli::try_parse_checked(["minibit-peer", "--no-dht", "daemon", "--state", "st"])
            .unwrap_err();
        assert!(
            err.to_string().contains("--no-dht goes with download"),
            "{err}"
        );
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn download_with_options() {
        let args = download(&[
            "minibit-peer",
            "-o",
            "out",
            "--port",
            "6881",
            "--exit-on-complete",
            "http://t:6969",
            "a b.mkv",
        ]);
        assert_eq!(args.source.as_deref(), Some("http://t:6969"));
        assert_eq!(args.name.as_deref(), Some("a b.mkv"));
        assert_eq!(args.output, PathBuf::from("out"));
        assert_eq!(args.port, Some(6881));
        assert!(args.exit_on_complete);
    }

    #[test]
    fn the_download_subcommand_and_the_bare_form_agree() {
        let bare = download(&["minibit-peer", "--bind", "127.0.0.1:7000", "x.torrent"]);
        let explicit = download(&[
            "minibit-peer",
            "download",
            "--bind",
            "127.0.0.1:7000",
            "x.torrent",
        ]);
        assert_eq!(bare.source, explicit.source);
        assert_eq!(bare.bind, explicit.bind);
        assert_eq!(explicit.bind.to_string(), "127.0.0.1:7000");
    }

    #[test]
    fn defaults_are_current_folder_all_interfaces_and_any_port() {
        let args = download(&["minibit-peer", "x.torrent"]);
        assert_eq!(args.output, PathBuf::from("."));
        assert_eq!(args.bind.to_string(), "0.0.0.0");
        assert_eq!(args.port, None);
        assert!(!args.exit_on_complete);
        assert!(args.only.is_empty());
        assert_eq!(args.state, None);
    }

    #[test]
    fn only_repeats_and_files_takes_a_source() {
        let args = download(&[
            "minibit-peer",
            "--only",
            "*.jpg",
            "--only",
            "b/**",
            "--state",
            "st",
            "x.torrent",
        ]);
        assert_eq!(args.only, ["*.jpg", "b/**"]);
        assert_eq!(args.state, Some(PathBuf::from("st")));
        let cli =
            Cli::try_parse_checked(["minibit-peer", "files", "http://t:6969", "photos"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Files { ref source, ref name })
                if source == "http://t:6969" && name.as_deref() == Some("photos")
        ));
        assert!(
            Cli::try_parse_checked(["minibit-peer", "--only", "*", "files", "a.torrent"]).is_err()
        );
    }

    #[test]
    fn subcommands_parse_and_options_of_another_command_are_refused() {
        let cli =
            Cli::try_parse_checked(["minibit-peer", "search", "http://t:6969", "mkv"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Search { ref tracker, ref query })
                if tracker == "http://t:6969" && query.as_deref() == Some("mkv")
        ));
        let cli = Cli::try_parse_checked(["minibit-peer", "-v", "info", "a.torrent"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Info { .. })));
        assert_eq!(cli.verbosity.verbose, 1);
        assert!(Cli::try_parse_checked(["minibit-peer", "--port", "x", "a.torrent"]).is_err());
        assert!(Cli::try_parse_checked(["minibit-peer", "-o", "d", "info", "a.torrent"]).is_err());
        assert!(Cli::try_parse_checked(["minibit-peer", "info", "-o", "d", "a.torrent"]).is_err());
        assert!(Cli::try_parse_checked(["minibit-peer"]).is_err());
    }

    #[test]
    fn daemon_and_remote_verbs_parse() {
        let cli =
            Cli::try_parse_checked(["minibit-peer", "daemon", "--state", "st", "--port", "7000"])
                .unwrap();
        let Some(Command::Daemon(args)) = cli.command else {
            panic!("not daemon");
        };
        assert_eq!(args.state, PathBuf::from("st"));
        assert_eq!(args.api.to_string(), "127.0.0.1:9091", "local by default");
        assert_eq!(args.port, Some(7000));
        assert!(
            Cli::try_parse_checked(["minibit-peer", "daemon"]).is_err(),
            "--state is required"
        );
        let cli = Cli::try_parse_checked([
            "minibit-peer",
            "add",
            "x.torrent",
            "--only",
            "*.jpg",
            "--only",
            "2",
            "--paused",
            "--api",
            "http://127.0.0.1:1",
            "--token",
            "t",
        ])
        .unwrap();
        let Some(Command::Add(args)) = cli.command else {
            panic!("not add");
        };
        assert_eq!(args.only, ["*.jpg", "2"]);
        assert!(args.paused);
        assert_eq!(args.remote.api, "http://127.0.0.1:1");
        let cli =
            Cli::try_parse_checked(["minibit-peer", "remove", "--delete-data", "a", "b"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Remove { ref target, delete_data: true }) if target.torrents == ["a", "b"]
        ));
        assert!(
            Cli::try_parse_checked(["minibit-peer", "pause"]).is_err(),
            "a torrent is required"
        );
    }

    #[test]
    fn subscription_verbs_parse_their_subscription() {
        let cli = Cli::try_parse_checked([
            "minibit-peer",
            "subscribe",
            "http://127.0.0.1:6969/#*.jpg",
            "--api",
            "http://127.0.0.1:1",
        ])
        .unwrap();
        let Some(Command::Subscribe(args)) = cli.command else {
            panic!("not subscribe");
        };
        assert_eq!(args.subscription.tracker(), "http://127.0.0.1:6969");
        assert_eq!(args.subscription.glob(), Some("*.jpg"));
        assert_eq!(args.remote.api, "http://127.0.0.1:1");
        let cli = Cli::try_parse_checked(["minibit-peer", "unsubscribe", "http://t:6969"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Unsubscribe(ref args)) if args.subscription.glob().is_none()
        ));
        for bad in ["ftp://t/", "http://t:6969#[a"] {
            let err = Cli::try_parse_checked(["minibit-peer", "subscribe", bad]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
        assert!(matches!(
            Cli::try_parse_checked(["minibit-peer", "subscriptions"])
                .unwrap()
                .command,
            Some(Command::Subscriptions { .. })
        ));
    }

    #[test]
    fn create_takes_several_trackers() {
        let cli = Cli::try_parse_checked([
            "minibit-peer",
            "create",
            "photos",
            "-o",
            "p.torrent",
            "--tracker",
            "http://a/announce",
            "-t",
            "https://b/announce",
            "--piece-length",
            "262144",
            "--private",
            "--comment",
            "hi",
        ])
        .unwrap();
        let Some(Command::Create(args)) = cli.command else {
            panic!("not create");
        };
        assert_eq!(args.trackers, ["http://a/announce", "https://b/announce"]);
        assert_eq!(args.piece_length, Some(262_144));
        assert!(args.private);
        assert_eq!(args.comment.as_deref(), Some("hi"));
    }
}
