"""Sending: SMS through a provider's HTTP API, e-mail over SMTP, DingTalk and WeCom robot posts, and the
worker thread that delivers due queue entries with exponential backoff.

A sender raises :class:`DeliveryError` for anything short of a confirmed send; the worker then schedules
the next attempt after ``min(backoff_max_s, backoff_base_s * 2**(attempt-1))`` (stretched by up to
``jitter``), or marks the delivery ``failed`` and logs it once ``max_attempts`` are used up.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import random
import smtplib
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import quote_plus

import requests

from lingtan_notify.config import NotifyConfig, Retry, RobotProvider
from lingtan_notify.queue import Claimed, DeliveryQueue, utcnow
from lingtan_notify.templates import Renderer

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A send that did not (verifiably) succeed. ``permanent``: retrying cannot help (no provider)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def mask(target: str) -> str:
    """A phone number or address as logged: ``138****0001``, ``l***@example.com`` (PIPL: no full numbers in logs)."""
    if "@" in target:
        user, _, domain = target.partition("@")
        return f"{user[:1]}***@{domain}"
    if target.startswith(("http://", "https://")):
        return target.split("?")[0]
    return target[:3] + "****" + target[-4:] if len(target) >= 8 else target


def backoff_s(attempt: int, retry: Retry, rnd: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    base = min(retry.backoff_max_s, retry.backoff_base_s * 2 ** max(0, attempt - 1))
    return base * (1 + retry.jitter * (rnd or random).random())


def _short(resp: requests.Response) -> str:
    return resp.text[:300].replace("\n", " ")


def _json_path(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise KeyError(path)
    return doc


class Dispatcher:
    """Sends one claimed delivery on its channel with the providers of ``cfg``."""

    def __init__(self, cfg: NotifyConfig, renderer: Renderer | None = None):
        self.cfg = cfg
        self.renderer = renderer or Renderer(cfg)
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "lingtan-notify/1"

    def send(self, d: Claimed) -> None:
        """Deliver ``d`` or raise :class:`DeliveryError`."""
        sender = {"sms": self.send_sms, "email": self.send_email, "dingtalk": self.send_dingtalk,
                  "wecom": self.send_wecom}.get(d.channel)
        if sender is None:
            raise DeliveryError(f"unknown channel {d.channel!r}", permanent=True)
        sender(d)

    # ------------------------------------------------------------------ SMS

    def send_sms(self, d: Claimed) -> None:
        p = self.cfg.providers.sms
        if p is None:
            raise DeliveryError("no SMS provider is configured (providers.sms)", permanent=True)
        variables = {**d.meta, "phone": d.target, "text": d.body, "sign": p.sign, "subject": d.subject}
        body = self.renderer.provider_value(p.body, variables)
        headers = dict(p.headers)
        if p.auth:
            token = self.cfg.secret(p.auth.token_env) or ""
            headers[p.auth.header] = f"{p.auth.scheme} {token}" if p.auth.scheme else token
        kw: dict[str, Any] = {"headers": headers, "timeout": p.timeout_s}
        kw["json" if p.encoding == "json" else "data" if p.encoding == "form" else "params"] = body
        try:
            resp = self.http.request(p.method, p.url, **kw)
        except requests.RequestException as exc:
            raise DeliveryError(f"SMS provider {p.url}: {exc.__class__.__name__}: {exc}") from None
        if not 200 <= resp.status_code < 300:
            raise DeliveryError(f"SMS provider answered HTTP {resp.status_code}: {_short(resp)}")
        if p.success.json_field:
            try:
                got = _json_path(resp.json(), p.success.json_field)
            except (ValueError, KeyError):
                raise DeliveryError(f"SMS provider answer has no JSON field {p.success.json_field!r}: "
                                    f"{_short(resp)}") from None
            if got != p.success.equals and str(got) != str(p.success.equals):
                raise DeliveryError(f"SMS provider refused: {p.success.json_field} = {got!r} "
                                    f"(expected {p.success.equals!r}): {_short(resp)}")

    # ------------------------------------------------------------------ e-mail

    def send_email(self, d: Claimed) -> None:
        p = self.cfg.providers.smtp
        if p is None:
            raise DeliveryError("no SMTP server is configured (providers.smtp)", permanent=True)
        msg = EmailMessage()
        msg["Subject"] = d.subject
        msg["From"] = Address(display_name=p.from_name, addr_spec=p.from_addr)
        msg["To"] = d.target
        msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
        msg["Message-ID"] = make_msgid(domain=p.from_addr.partition("@")[2] or None)
        if d.meta.get("report"):  # a scheduled report (docs/analysis.md §8), its files attached
            msg["X-Lingtan-Report"] = str(d.meta["report"])
        else:
            msg["X-Lingtan-Alert"] = str(d.meta.get("fingerprint", ""))
        msg.set_content(d.body, charset="utf-8", cte="base64")
        for a in d.attachments:
            maintype, _, subtype = a.content_type.partition("/")
            msg.add_attachment(a.data, maintype=maintype, subtype=subtype, filename=a.name)
        try:
            if p.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(p.host, p.port, timeout=p.timeout_s,
                                                      context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(p.host, p.port, timeout=p.timeout_s)
            with smtp:
                if p.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if p.username:
                    smtp.login(p.username, self.cfg.secret(p.password_env) or "")
                refused = smtp.send_message(msg, from_addr=p.from_addr, to_addrs=[d.target])
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {p.host}:{p.port}: {exc.__class__.__name__}: {exc}") from None
        if refused:
            raise DeliveryError(f"SMTP {p.host}:{p.port} refused {mask(d.target)}: {refused}")

    # ------------------------------------------------------------------ robots

    def _robot_url(self, robot: RobotProvider) -> str:
        return robot.url or self.cfg.secret(robot.url_env) or ""

    def _post_robot(self, name: str, url: str, body: dict[str, Any], timeout: float) -> None:
        try:
            resp = self.http.post(url, json=body, timeout=timeout)
        except requests.RequestException as exc:
            raise DeliveryError(f"{name} robot: {exc.__class__.__name__}: {exc}") from None
        if not 200 <= resp.status_code < 300:
            raise DeliveryError(f"{name} robot answered HTTP {resp.status_code}: {_short(resp)}")
        try:
            answer = resp.json()
        except ValueError:
            raise DeliveryError(f"{name} robot answer is not JSON: {_short(resp)}") from None
        if answer.get("errcode") != 0:
            raise DeliveryError(f"{name} robot refused: errcode {answer.get('errcode')!r} {answer.get('errmsg', '')}")

    def send_dingtalk(self, d: Claimed) -> None:
        robot = self.cfg.providers.dingtalk
        if robot is None:
            raise DeliveryError("no DingTalk robot is configured (providers.dingtalk)", permanent=True)
        url = self._robot_url(robot)
        if secret := self.cfg.secret(robot.secret_env):
            ts = str(int(time.time() * 1000))
            digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
            sign = quote_plus(base64.b64encode(digest).decode())
            url += f"{'&' if '?' in url else '?'}timestamp={ts}&sign={sign}"
        self._post_robot("DingTalk", url, {"msgtype": "markdown", "markdown": {"title": d.subject, "text": d.body}},
                         robot.timeout_s)

    def send_wecom(self, d: Claimed) -> None:
        robot = self.cfg.providers.wecom
        if robot is None:
            raise DeliveryError("no WeCom robot is configured (providers.wecom)", permanent=True)
        content = d.body.encode()[:4096].decode(errors="ignore")  # WeCom's markdown limit is 4096 bytes
        self._post_robot("WeCom", self._robot_url(robot), {"msgtype": "markdown", "markdown": {"content": content}},
                         robot.timeout_s)


class Worker:
    """A thread that delivers due deliveries, a few at a time, and sleeps until the next one falls due."""

    def __init__(self, queue: DeliveryQueue, dispatcher: Dispatcher, retry: Retry):
        self.queue, self.dispatcher, self.retry = queue, dispatcher, retry
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=retry.concurrency, thread_name_prefix="notify-send")
        self.last_error = ""

    def _attempt(self, d: Claimed) -> str:
        """One attempt at ``d``, settled in the queue; the outcome (delivered, retry, failed)."""
        try:
            self.dispatcher.send(d)
        except Exception as exc:  # noqa: BLE001 - a bug in a sender must not lose the delivery either
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            error = str(exc) if isinstance(exc, DeliveryError) else f"{exc.__class__.__name__}: {exc}"
            if permanent or d.attempt >= self.retry.max_attempts:
                self.queue.failed(d.id, error)
                log.error("delivery %d (%s to %s, alert %s) FAILED after %d attempt(s): %s", d.id, d.channel,
                          mask(d.target), d.meta.get("alertname", ""), d.attempt, error)
                return "failed"
            delay = backoff_s(d.attempt, self.retry)
            self.queue.retry_at(d.id, error, utcnow() + dt.timedelta(seconds=delay))
            log.warning("delivery %d (%s to %s) attempt %d/%d failed, next in %.3gs: %s", d.id, d.channel,
                        mask(d.target), d.attempt, self.retry.max_attempts, delay, error)
            return "retry"
        self.queue.delivered(d.id)
        log.info("delivery %d (%s to %s, alert %s) delivered on attempt %d", d.id, d.channel, mask(d.target),
                 d.meta.get("alertname", ""), d.attempt)
        return "delivered"

    def run_once(self) -> dict[str, int]:
        """Deliver every delivery due now (in batches); how many ended delivered, retry or failed."""
        done = {"delivered": 0, "retry": 0, "failed": 0}
        while not self._stop.is_set():
            batch = self.queue.claim_due(self.retry.concurrency * 4, self.retry.lease_s)
            if not batch:
                break
            for outcome in self._pool.map(self._attempt, batch):
                done[outcome] += 1
        return done

    def _sleep_s(self) -> float:
        due = self.queue.next_due()
        if due is None:
            return self.retry.poll_interval_s
        return min(self.retry.poll_interval_s, max(0.0, (due - utcnow()).total_seconds()))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                wait = self._sleep_s()
                self.last_error = ""
            except Exception as exc:  # noqa: BLE001 - e.g. the database is briefly unavailable: keep going
                self.last_error = f"{exc.__class__.__name__}: {exc}"
                log.exception("notify worker cycle failed")
                wait = self.retry.poll_interval_s
            self._wake.wait(wait)
            self._wake.clear()

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="notify-worker", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Look for due deliveries now (called after a webhook was accepted)."""
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
