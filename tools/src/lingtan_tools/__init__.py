"""Lingtan developer tools: the demo-park simulator (:mod:`lingtan_tools.simulate`), the local
stack that ``make up`` starts (:mod:`lingtan_tools.stack`) and the benchmarks that ``make bench``
runs (:mod:`lingtan_tools.bench`). Tools sit above the services and may import them; nothing
imports a tool (docs/architecture.md)."""
