"""The user manual at ``/help/``: the mkdocs site of ``docs/`` (``mkdocs.yml`` at the repository root).

The site is built into ``<state_dir>/help-site/`` by :func:`build_manual` on the first request to ``/help``
(and again when a file under ``docs/`` or ``mkdocs.yml`` changed, checked at most every few seconds), then
served as static files. ``/help`` is readable without login: the login page links to it, and the manual holds
no secrets. Every portal page links to its own section through ``base.html`` (``help_anchor``);
:func:`help_url` gives the same address in Python.

An installed wheel has no ``mkdocs.yml`` next to the code: the setting ``manual_config`` (when settings have it)
names one elsewhere. Without sources an already built site in the state directory is still served; with
neither, ``/help`` answers 404 and says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from flask import Blueprint, abort, g, redirect, render_template, send_from_directory
from werkzeug.security import safe_join

from lingtan_proxy.context import state

log = logging.getLogger(__name__)
bp = Blueprint("help", __name__)

REPO = Path(__file__).resolve().parents[3]  # auth-proxy/src/lingtan_proxy/ -> the checkout
MKDOCS_YML = REPO / "mkdocs.yml"
SITE_DIR = "help-site"  # under the state directory
STAMP = ".lingtan-manual"  # in the built site: the fingerprint of the sources it was built from
RECHECK_S = 5.0  # a running proxy looks for changed sources at most this often
_build_lock = threading.Lock()
_checked: dict[Path, float] = {}  # site directory -> time.monotonic() of the last check


class ManualUnavailable(RuntimeError):
    """The manual cannot be built here (no mkdocs.yml, or mkdocs is not installed)."""


def _sources(config: Path) -> Iterator[Path]:
    yield config
    docs = config.parent / "docs"
    if docs.is_dir():
        yield from sorted(p for p in docs.rglob("*") if p.is_file())


def sources_fingerprint(config: Path = MKDOCS_YML) -> str:
    """A digest of the path, size and modification time of mkdocs.yml and of every file under docs/."""
    h = hashlib.sha256()
    for p in _sources(config):
        st = p.stat()
        h.update(f"{p.relative_to(config.parent)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _built_from(out_dir: Path) -> str | None:
    try:
        return (out_dir / STAMP).read_text(encoding="utf-8").strip() if (out_dir / "index.html").is_file() else None
    except OSError:
        return None


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """One builder at a time: threads of this process (lock) and other proxy workers (flock)."""
    with _build_lock:
        try:
            import fcntl
        except ImportError:  # not POSIX: threads only
            yield
            return
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_file, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def build_manual(out_dir: Path, *, force: bool = False, config: Path | None = None) -> Path:
    """Build the manual with mkdocs (in-process) into ``out_dir`` when it is missing or older than its sources.

    ``config`` defaults to the repository's mkdocs.yml. The site is built next to ``out_dir`` and then moved into
    place, so a request never sees a half-written site. Returns ``out_dir``. Raises :class:`ManualUnavailable`
    when mkdocs.yml or mkdocs is missing, and mkdocs' own exceptions when the build fails.
    """
    config = Path(config or MKDOCS_YML).resolve()
    out_dir = Path(out_dir).resolve()
    if not config.is_file():
        raise ManualUnavailable(f"{config} not found: the manual's sources are not installed here")
    try:
        from mkdocs.commands.build import build
        from mkdocs.config import load_config
    except ImportError as exc:
        raise ManualUnavailable(f"mkdocs is not installed ({exc})") from None
    if not force and _built_from(out_dir) == sources_fingerprint(config):
        return out_dir
    with _exclusive(out_dir.parent / f".{out_dir.name}.lock"):
        fingerprint = sources_fingerprint(config)
        if not force and _built_from(out_dir) == fingerprint:  # another thread or worker built it meanwhile
            return out_dir
        tag = f"{os.getpid()}-{threading.get_ident()}"
        tmp, old = out_dir.parent / f".{out_dir.name}.new-{tag}", out_dir.parent / f".{out_dir.name}.old-{tag}"
        shutil.rmtree(tmp, ignore_errors=True)
        started = time.monotonic()
        try:
            cfg = load_config(str(config), site_dir=str(tmp), strict=False)
            build(cfg)
            (tmp / STAMP).write_text(fingerprint + "\n", encoding="utf-8")
            if out_dir.exists():
                os.rename(out_dir, old)
            os.rename(tmp, out_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
        log.info("built the user manual into %s in %.1f s", out_dir, time.monotonic() - started)
    return out_dir


def site_dir() -> Path:
    return Path(state().settings.state_dir).resolve() / SITE_DIR


def manual_config() -> Path:
    """The manual's mkdocs.yml: the setting ``manual_config`` when there is one (an image that ships docs/ and
    mkdocs.yml outside the package), else the repository's."""
    return Path(getattr(state().settings, "manual_config", None) or MKDOCS_YML)


def help_url(page: str = "index.html", anchor: str = "") -> str:
    """The manual's ``page`` (e.g. ``screens.html`` or ``screens``) in the current locale, with ``#anchor``."""
    if not page.endswith(".html"):
        page += ".html"
    lang = "en" if g.get("locale") == "en" else "zh"
    return f"/help/{lang}/{page}" + (f"#{anchor}" if anchor else "")


bp.add_app_template_global(help_url, "help_url")


def _unavailable(reason: str, status: int = 404):
    zh = g.get("locale", "zh") != "en"
    text = (f"用户手册暂不可用（{reason}），请联系系统管理员。" if zh else
            f"The user manual is not available ({reason}); please tell the system administrator.")
    return render_template("message.html", message=text, status=status), status


def _ready_site():
    """The built site's directory, (re)built when needed; or an error response when there is none."""
    out = site_dir()
    last = _checked.get(out)
    if last is not None and time.monotonic() - last < RECHECK_S and (out / "index.html").is_file():
        return out
    try:
        build_manual(out, config=manual_config())
    except ManualUnavailable as exc:
        if not (out / "index.html").is_file():
            return _unavailable(str(exc))
        log.debug("serving the manual built earlier in %s: %s", out, exc)
    except Exception as exc:  # a broken docs/ edit must not take the portal down: serve the last good build
        log.exception("building the user manual failed")
        if not (out / "index.html").is_file():
            return _unavailable(f"mkdocs build failed ({exc.__class__.__name__}: {exc})", 503)
    _checked[out] = time.monotonic()
    return out


@bp.get("/help")
def help_root():
    return redirect("/help/index.html")


@bp.get("/help/")
def help_index():
    return help_file("index.html")


@bp.get("/help/<path:filename>")
def help_file(filename: str):
    site = _ready_site()
    if not isinstance(site, Path):
        return site
    if any(part.startswith(".") for part in filename.split("/")):  # "..", ".", the stamp and lock files
        abort(404)
    path = safe_join(str(site), filename)  # None for absolute paths, backslashes, drive letters, ...
    if path is None:
        abort(404)
    if os.path.isdir(path):
        if not filename.endswith("/"):  # /help/zh -> /help/zh/, so that the page's relative links resolve
            return redirect(f"/help/{filename}/")
        filename += "index.html"
    return send_from_directory(site, filename)
