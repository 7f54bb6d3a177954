//! `minibit-peer create`: makes a `.torrent` of a file or folder with the
//! core's [`MetainfoBuilder`], showing a bar while hashing and saying which
//! piece length it chose (the core's `auto_piece_length` unless one is given).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use minibit_core::metainfo::MetainfoBuilder;
use minibit_core::metainfo::build::check_piece_length;

use crate::cli::CreateArgs;

/// Checks the arguments, hashes `args.path` and writes the `.torrent`;
/// prints where it went. Refuses to overwrite an existing file.
///
/// # Errors
/// Bad arguments (before any hashing), unreadable content, an unwritable output.
pub async fn create(args: CreateArgs, quiet: bool) -> Result<()> {
    let (output, builder) = check(&args)?;
    let bar = hashing_bar(quiet);
    let progress = {
        let bar = bar.clone();
        move |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let built = tokio::task::spawn_blocking(move || builder.build_with_progress(progress)).await;
    bar.finish_and_clear();
    let metainfo = built
        .context("the hashing task failed")?
        .with_context(|| format!("cannot make a torrent of {}", args.path.display()))?;
    write_new(&output, &metainfo.to_bytes())?;
    if !quiet {
        let how = if args.piece_length.is_some() {
            "as given"
        } else {
            "chosen for the size"
        };
        eprintln!(
            "piece length {} ({how}: {} pieces)",
            HumanBytes(u64::from(metainfo.layout().piece_length())),
            metainfo.layout().piece_count()
        );
    }
    println!(
        "{}: {} ({} in {} pieces), info-hash {}",
        output.display(),
        metainfo.info().name(),
        HumanBytes(metainfo.total_length()),
        metainfo.layout().piece_count(),
        metainfo.info_hash()
    );
    Ok(())
}

/// Everything that can be checked before hashing: the content exists, the
/// output does not and its folder does, the piece length and the tracker URLs.
fn check(args: &CreateArgs) -> Result<(PathBuf, MetainfoBuilder)> {
    let meta = std::fs::metadata(&args.path).with_context(|| format!("{}", args.path.display()))?;
    if !meta.is_file() && !meta.is_dir() {
        bail!("{}: not a regular file or a folder", args.path.display());
    }
    if let Some(length) = args.piece_length {
        check_piece_length(length).context("--piece-length: leave it out for an automatic one")?;
    }
    for url in &args.trackers {
        let known = ["http://", "https://", "udp://"]
            .iter()
            .any(|scheme| url.starts_with(scheme));
        if !known {
            bail!(
                "--tracker {url}: not a tracker URL (http://, https:// or udp://HOST:PORT/announce)"
            );
        }
    }
    let output = if let Some(output) = &args.output {
        output.clone()
    } else {
        {
            let canonical = std::fs::canonicalize(&args.path)
                .with_context(|| format!("{}", args.path.display()))?;
            let name = canonical
                .file_name()
                .with_context(|| format!("{}: has no name to use", args.path.display()))?;
            let mut file = name.to_owned();
            file.push(".torrent");
            PathBuf::from(file)
        }
    };
    if output.exists() {
        bail!(
            "{}: already exists: remove it or choose another with -o",
            output.display()
        );
    }
    let parent = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        bail!(
            "{}: the folder {} does not exist",
            output.display(),
            parent.display()
        );
    }
    let mut builder = MetainfoBuilder::new(&args.path)
        .piece_length(args.piece_length)
        .private(args.private)
        .created_by(concat!("minibit-peer ", env!("CARGO_PKG_VERSION")));
    if let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) {
        builder = builder.creation_date(now.as_secs().try_into().unwrap_or(i64::MAX));
    }
    if let Some(first) = args.trackers.first() {
        builder = builder.announce(first.clone());
    }
    if args.trackers.len() > 1 {
        // BEP 12: one tracker per tier, tried in this order.
        builder = builder.announce_list(args.trackers.iter().map(|t| vec![t.clone()]).collect());
    }
    if let Some(comment) = &args.comment {
        builder = builder.comment(comment.clone());
    }
    Ok((output, builder))
}

/// Writes `bytes` to a new file at `path` (never over an existing one).
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("{}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("{}", path.display()))
}

/// A hashing bar on stderr (hidden with `-q` or off a terminal).
fn hashing_bar(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "hashing [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    ProgressBar::new(0).with_style(style)
}
