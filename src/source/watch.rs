//! Watching a local directory: file-system events are batched so that an editor's burst of
//! writes (or a `git checkout`) becomes one signal to re-read the manifests.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use notify::event::{EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::SourceError;

/// How long after the first event of a burst the signal is sent.
pub(crate) const BATCH: Duration = Duration::from_millis(500);

/// Watch `dir` recursively; the receiver gets one `()` per batch of changes. The watcher
/// lives in a task that ends when the receiver is dropped. Must run inside a Tokio runtime.
pub(crate) fn watch_dir(dir: &Path) -> Result<mpsc::Receiver<()>, SourceError> {
    let watch_err = |message: String| SourceError::Watch {
        path: dir.to_path_buf(),
        message,
    };
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| watch_err("watching needs a Tokio runtime".to_string()))?;
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<()>();
    // Event paths start with the watched path made absolute (or, on some platforms, resolved).
    let roots: Vec<PathBuf> = [std::path::absolute(dir).ok(), dir.canonicalize().ok()]
        .into_iter()
        .flatten()
        .collect();
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(event) if !is_relevant(&roots, &event) => {}
            Ok(_) => {
                let _ = raw_tx.send(());
            }
            Err(e) => {
                // Events may have been lost: signal so the directory is read again.
                tracing::warn!(error = %e, "file watcher error");
                let _ = raw_tx.send(());
            }
        })
        .map_err(|e| watch_err(e.to_string()))?;
    watcher
        .watch(dir, RecursiveMode::Recursive)
        .map_err(|e| watch_err(e.to_string()))?;

    // Capacity 1: a signal not yet taken already covers any later change.
    let (tx, rx) = mpsc::channel(1);
    runtime.spawn(async move {
        // Owning the watcher here keeps the OS watch alive exactly as long as the receiver.
        let _watcher = watcher;
        loop {
            tokio::select! {
                got = raw_rx.recv() => if got.is_none() { break },
                _ = tx.closed() => break,
            }
            tokio::time::sleep(BATCH).await;
            while raw_rx.try_recv().is_ok() {}
            if let Err(mpsc::error::TrySendError::Closed(())) = tx.try_send(()) {
                break;
            }
        }
    });
    Ok(rx)
}

/// Whether an event can change what the manifests say. Reads (our own included: inotify
/// reports opens) and metadata changes cannot, nor can changes under hidden entries.
fn is_relevant(roots: &[PathBuf], event: &notify::Event) -> bool {
    if matches!(
        event.kind,
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_))
    ) {
        return false;
    }
    event.paths.is_empty()
        || event
            .paths
            .iter()
            .any(|p| !roots.iter().any(|root| is_hidden(root, p)))
}

/// Whether `path` is under a hidden entry of `root`; a path outside `root` is not hidden
/// (when unsure, signal).
fn is_hidden(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    rel.components().any(|c| match c {
        Component::Normal(name) => name.to_string_lossy().starts_with('.'),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind};

    #[test]
    fn reads_and_hidden_files_are_not_changes() {
        let root = &[PathBuf::from("/m")];
        let ev = |kind, p: &str| notify::Event::new(kind).add_path(PathBuf::from(p));
        assert!(!is_relevant(
            root,
            &ev(EventKind::Access(AccessKind::Any), "/m/a.yaml")
        ));
        assert!(!is_relevant(
            root,
            &ev(EventKind::Create(CreateKind::File), "/m/.git/index")
        ));
        assert!(is_relevant(
            root,
            &ev(EventKind::Create(CreateKind::File), "/m/sub/a.yaml")
        ));
        assert!(is_relevant(root, &notify::Event::new(EventKind::Any)));
    }
}
