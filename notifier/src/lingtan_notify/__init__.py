"""The notification bridge: Grafana alerting's webhook in, SMS, e-mail, DingTalk and WeCom out.

Grafana sends each alert notification to ``POST /api/v1/grafana``; the bridge stores it with one
delivery per recipient in its queue (:mod:`lingtan_notify.queue`) before answering, then a worker
(:mod:`lingtan_notify.deliver`) sends the messages rendered from Jinja2 templates
(:mod:`lingtan_notify.templates`, Simplified Chinese by default) and retries with backoff. Routing,
providers and templates come from ``notify.yaml`` (:mod:`lingtan_notify.config`). See README.md.
"""
