"""The notification bridge: Grafana alerting's webhook in, SMS, e-mail, DingTalk and WeCom out.

Grafana sends each alert notification to ``POST /api/v1/grafana``; the bridge stores it with one
delivery per recipient in its queue (:mod:`lingtan.notify.queue`) before answering, then a worker
(:mod:`lingtan.notify.deliver`) sends the messages rendered from Jinja2 templates
(:mod:`lingtan.notify.templates`, Simplified Chinese by default) and retries with backoff. Routing,
providers and templates come from ``notify.yaml`` (:mod:`lingtan.notify.config`). See README.md.
"""
