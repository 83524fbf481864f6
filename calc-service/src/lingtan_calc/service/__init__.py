"""The calc-service itself: the recalculation engine (:mod:`.engine`), its scheduler
(:mod:`.scheduler`) and the Flask app with its API blueprints (:mod:`.app`, :mod:`.api`,
:mod:`.api_meters`, :mod:`.openapi`). It composes the adapters and the core."""
