"""`cmhbench leaderboard publish`: commit a built site into a git repository's branch and push.

The target is anything ``git clone`` accepts (a local path, a bare repository, a remote URL). The
branch (``gh-pages`` by default) is created as an orphan branch when it does not exist; its whole
content is replaced by the site, and the commit message counts what changed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cmhbench.errors import CmhbenchError

# commits need an identity; a machine without a git identity (CI, a cluster node) gets this one
_IDENTITY = ["-c", "user.name=cmhbench", "-c", "user.email=cmhbench@localhost"]


@dataclass
class PublishReport:
    committed: bool
    message: str
    commit: str | None


def _git(*args: str, cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        raise CmhbenchError("publishing needs git, which is not installed") from None
    if out.returncode != 0:
        raise CmhbenchError(f"git {' '.join(args[:2])} failed: {out.stderr.strip()[-500:]}")
    return out.stdout


def _has_identity(cwd: Path) -> bool:
    out = subprocess.run(["git", "config", "user.email"], cwd=cwd, capture_output=True, text=True)
    return out.returncode == 0 and bool(out.stdout.strip())


def branch_name(branch: str) -> str:
    """The short name of a branch (``refs/heads/x`` -> ``x``), refused where git would not take it
    as one or would read it as an option."""
    name = branch.removeprefix("refs/heads/")
    valid = subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True, text=True)
    if name.startswith("-") or valid.returncode != 0:
        raise CmhbenchError(f"--branch {branch!r}: not a valid git branch name")
    return name


def publish_site(site: str | Path, repo: str, branch: str = "gh-pages", summary: str = "") -> PublishReport:
    if repo.startswith("-"):
        raise CmhbenchError(f"--to {repo!r}: a repository path or URL cannot start with '-'")
    branch = branch_name(branch)
    site = Path(site)
    if not (site / "index.html").is_file():
        raise CmhbenchError(f"{site} is not a built leaderboard (no index.html); run `cmhbench leaderboard build`")
    with tempfile.TemporaryDirectory(prefix="cmhbench-publish-") as tmp:
        checkout = Path(tmp) / "checkout"
        _git("clone", "--quiet", "--no-checkout", "--", repo, str(checkout))
        remote_branches = _git("ls-remote", "--heads", "origin", f"refs/heads/{branch}", cwd=checkout)
        if remote_branches.strip():
            _git("checkout", "--quiet", "-B", branch, f"origin/{branch}", cwd=checkout)
        else:
            _git("checkout", "--quiet", "--orphan", branch, cwd=checkout)
        for child in checkout.iterdir():
            if child.name == ".git":
                continue
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        shutil.copytree(site, checkout, dirs_exist_ok=True)
        _git("add", "--all", cwd=checkout)
        changes = _git("status", "--porcelain", cwd=checkout).splitlines()
        if not changes:
            return PublishReport(False, f"nothing changed on {branch}", None)
        added = sum(line[:1] == "A" for line in changes)
        deleted = sum(line[:1] == "D" for line in changes)
        changed = len(changes) - added - deleted
        message = (f"leaderboard: {added} file(s) added, {changed} changed, {deleted} removed"
                   + (f"\n\n{summary}" if summary else ""))
        identity = [] if _has_identity(checkout) else _IDENTITY
        _git(*identity, "commit", "--quiet", "-m", message, cwd=checkout)
        commit = _git("rev-parse", "HEAD", cwd=checkout).strip()
        _git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=checkout)
    return PublishReport(True, message, commit)
