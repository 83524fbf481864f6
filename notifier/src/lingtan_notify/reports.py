"""Scheduled reports by e-mail (docs/analysis.md §8): the calc-service posts a report's files, the bridge
sends them to the groups whose ``reports`` list its kind.

``POST /api/v1/reports`` (bearer token, as the webhook) takes :class:`ReportPayload`: the report's
entity, kind, period, language and the files, base64-encoded with their SHA-256, which the bridge
checks before it accepts anything. The files are stored with the notification
(:class:`~lingtan_notify.queue.AttachmentRow`) and attached to one e-mail per address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lingtan.errors import ApiError
from lingtan_notify.config import NotifyConfig
from lingtan_notify.queue import Attachment, DeliverySpec

#: the attachment types a report may carry (XLSX, PDF)
CONTENT_TYPES = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/pdf")
KIND_NAMES = {"zh": {"day": "日报", "month": "月报", "year": "年报"},
              "en": {"day": "daily report", "month": "monthly report", "year": "annual report"}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReportFile(_Strict):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^/\\\x00-\x1f]+$")
    content_type: Literal[CONTENT_TYPES]  # type: ignore[valid-type]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_base64: str = Field(min_length=1)


class ReportPayload(_Strict):
    report: str = Field(min_length=1, max_length=100)  # the calc-service's id of this generation
    entity: str = Field(min_length=1, max_length=100)  # "park" or an enterprise id
    entity_name: str = ""
    kind: Literal["day", "month", "year"]
    period: str = Field(min_length=4, max_length=10)  # 2026-03-01, 2026-03, 2026
    lang: Literal["zh", "en"] = "zh"
    reason: str = ""  # schedule, or "recalculated: ..."
    files: list[ReportFile] = Field(min_length=1, max_length=4)


def attachments_of(payload: ReportPayload) -> tuple[Attachment, ...]:
    """The decoded files; a file that is not base64 or does not match its SHA-256 is a 400 naming it."""
    out = []
    for i, f in enumerate(payload.files):
        try:
            data = base64.b64decode(f.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "invalid_payload", f"files[{i}].content_base64 ({f.name}) is not base64",
                           f"files.{i}.content_base64") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != f.sha256:
            raise ApiError(400, "checksum_mismatch", f"files[{i}] ({f.name}): the content's SHA-256 {digest} is not "
                           f"the stated {f.sha256}; nothing was accepted", f"files.{i}.sha256")
        out.append(Attachment(f.name, f.content_type, f.sha256, data))
    return tuple(out)


def _message(payload: ReportPayload, locale: str, files: tuple[Attachment, ...]) -> tuple[str, str]:
    name = payload.entity_name or payload.entity
    kind = KIND_NAMES[locale][payload.kind]
    again = payload.reason.startswith("recalculated")
    lines = [f"  {a.name}  SHA-256 {a.sha256}" for a in files]
    if locale == "zh":
        subject = f"【零碳平台】{name} {kind} {payload.period}" + ("（重算后更新）" if again else "")
        body = [f"{name} {payload.period} {kind}" + ("已因数据重算更新，此前发送的版本作废。" if again else "已生成。"),
                "附件：", *lines, "", "报表也可在门户“能耗分析 → 报表”中下载；附件的 SHA-256 与归档一致。",
                "本邮件由零碳平台自动发送，请勿回复。"]
    else:
        subject = f"[Lingtan] {name} {kind} {payload.period}" + (" (updated after a recalculation)" if again else "")
        body = [f"The {kind} of {name} for {payload.period} " + ("was updated after a recalculation; it replaces the "
                "version sent before." if again else "is ready."), "Attached:", *lines, "",
                "The report can also be downloaded in the portal (Energy analysis → Reports); the attachments' "
                "SHA-256 match the archive.", "This e-mail was sent by the Lingtan platform; please do not reply."]
    return subject, "\n".join(body) + "\n"


def plan_report_deliveries(cfg: NotifyConfig, payload: ReportPayload,
                           files: tuple[Attachment, ...]) -> list[DeliverySpec]:
    """One e-mail per address of the groups that receive this report's kind for its entity."""
    specs, seen = [], set()
    meta = {"report": payload.report, "entity": payload.entity, "kind": payload.kind, "period": payload.period}
    for group in cfg.report_route(payload.entity, payload.kind):
        locale = group.locale or payload.lang
        subject, body = _message(payload, locale, files)
        for address in group.emails:
            if address not in seen:
                seen.add(address)
                specs.append(DeliverySpec("email", address, group.name, locale, subject, body, meta))
    return specs
