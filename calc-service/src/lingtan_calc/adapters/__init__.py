"""The calc-service's adapters: InfluxDB reads (:mod:`.metered`, InfluxQL over the v1 API) and
writes (:mod:`.derived`, line protocol), and the SQL tables (:mod:`.store`, :mod:`.meter_events`).
They turn storage into the pandas objects and models of :mod:`lingtan_calc.core` and back."""
