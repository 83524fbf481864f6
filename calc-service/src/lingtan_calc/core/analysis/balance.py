"""The energy balance table (能源平衡表) and the efficiency of each conversion node.

The table follows the layout of an enterprise energy balance (GB/T 28751-2012 企业能量平衡表编制方法,
GB/T 3484-2009 企业能量平衡通则): one column per carrier, in its physical unit and in tce, and
the rows below, built from the metered flows along the park model's topology (``acc_flow``:
one row per edge and period, ``quantity`` in the carrier's canonical unit and ``tce``).

=====================  =====================================================================
``purchase``           edges out of a supply node other than on-site generation (grid, gas main, …)
``own_generation``     edges out of an ``onsite_generation`` supply node (PV, wind, waste heat)
``conversion_input``   edges into a conversion node (boiler, CHP, chiller, heat exchanger)
``conversion_output``  edges out of one
``storage_charge``     edges into a storage node; ``storage_discharge`` out of it: their
                       difference is the stock change (库存变化)
``distribution``       a transformer's input less its output: its loss together with anything
                       its metered feeders do not cover (the node residual)
``end_use``            edges into an ``end_use`` node of kind unit or process, one row per node
``export``             edges into an ``end_use`` node of kind export
=====================  =====================================================================

Every edge appears once as a source row and once as a use row, so per carrier
``purchase + own_generation + conversion_output + storage_discharge`` equals
``conversion_input + storage_charge + distribution + end_use + export``: the balance holds by
construction, and what the meters do not explain shows up where it arises, as a distribution
residual or a conversion loss that no plant could have. :func:`balance_warnings` names those,
and :func:`boundary_check` compares the table's purchases and exports with the accounting's
boundary meters (GB/T 2589-2020 ch. 5), where a difference means an edge the topology lacks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: conversion-node kinds that pass one carrier through (a loss, not a conversion)
DISTRIBUTION_KINDS = frozenset({"transformer"})
STORAGE_KINDS = frozenset({"storage"})
#: converters that move heat with a COP above 1: more energy leaves than the electricity that enters
HEAT_PUMP_KINDS = frozenset({"chiller"})
ROW_ORDER = ["purchase", "own_generation", "conversion_output", "storage_discharge", "conversion_input",
             "storage_charge", "distribution", "end_use", "export"]
SOURCE_ROWS = frozenset({"purchase", "own_generation", "conversion_output", "storage_discharge"})
#: a transformer loses 0.5-2 % of what passes through it at normal loading (no-load plus load losses of a
#: distribution transformer); a residual above this share is unmetered use or a missing feeder, not loss
DISTRIBUTION_RESIDUAL_MAX = 0.05
#: metered purchases and the accounting's boundary meters are the same meters when the topology is
#: complete; above this relative difference (rounding and hourly splitting stay far below it) an edge is
#: missing or measured by another point
BOUNDARY_TOLERANCE = 0.001


def _classify(node_type: str, node_kind: str, side: str) -> str | None:
    """The row an edge end at a node of this type and kind belongs to (``side``: source or target)."""
    if node_type == "supply":
        return ("own_generation" if node_kind == "onsite_generation" else "purchase") if side == "source" else None
    if node_type == "conversion":
        if node_kind in DISTRIBUTION_KINDS:
            return "distribution"
        if node_kind in STORAGE_KINDS:
            return "storage_discharge" if side == "source" else "storage_charge"
        return "conversion_output" if side == "source" else "conversion_input"
    if side == "target":
        return "export" if node_kind == "export" else "end_use"
    return None


def balance_table(flows: pd.DataFrame, nodes: pd.DataFrame) -> pd.DataFrame:
    """The balance rows of one entity and period.

    Parameters
    ----------
    flows : pandas.DataFrame
        ``source``, ``target``, ``carrier``, ``quantity`` [canonical unit], ``tce`` per edge.
    nodes : pandas.DataFrame
        ``id``, ``name``, ``type``, ``kind`` of every topology node.

    Returns
    -------
    pandas.DataFrame
        ``row`` (of :data:`ROW_ORDER`), ``node`` (the node the row is about: the supply, the
        converter, the end use), ``node_name``, ``carrier``, ``quantity`` and ``tce``, signed
        as sources (+) and uses (+) in their own rows. A distribution node's row is its input
        less its output (negative when more leaves it than enters), with ``throughput`` its input.
    """
    info = nodes.set_index("id")
    out = []
    for side in ("source", "target"):
        ends = flows.join(info[["type", "kind"]], on=side)
        for (node, carrier), part in ends.groupby([side, "carrier"], sort=True):
            row = _classify(str(part["type"].iloc[0]), str(part["kind"].iloc[0]), side)
            if row is None:
                continue
            sign = -1.0 if row == "distribution" and side == "source" else 1.0
            out.append((row, node, carrier, sign * part["quantity"].sum(), sign * part["tce"].sum(min_count=1)))
    table = pd.DataFrame(out, columns=["row", "node", "carrier", "quantity", "tce"])
    table = table.groupby(["row", "node", "carrier"], as_index=False).agg(
        quantity=("quantity", "sum"), tce=("tce", lambda v: v.sum(min_count=1)))
    table["node_name"] = table["node"].map(info["name"])
    table["kind"] = table["node"].map(info["kind"])
    inflow = flows.groupby(["target", "carrier"])["quantity"].sum()
    table["throughput"] = [inflow.get((n, c), 0.0) if r == "distribution" else np.nan
                           for r, n, c in zip(table["row"], table["node"], table["carrier"], strict=True)]
    table["order"] = table["row"].map({r: i for i, r in enumerate(ROW_ORDER)})
    return table.sort_values(["order", "carrier", "node"]).drop(columns="order").reset_index(drop=True)


def closure(table: pd.DataFrame) -> pd.DataFrame:
    """Per carrier: sources, uses and their difference [unit and tce] (0 when the table balances)."""
    sign = np.where(table["row"].isin(SOURCE_ROWS), 1.0, -1.0)
    signed = table.assign(s_qty=sign * table["quantity"], s_tce=sign * table["tce"],
                          src_qty=np.where(sign > 0, table["quantity"], 0.0))
    out = signed.groupby("carrier").agg(sources=("src_qty", "sum"), imbalance=("s_qty", "sum"),
                                        imbalance_tce=("s_tce", lambda v: v.sum(min_count=1)))
    return out.reset_index()


def conversion_losses(table: pd.DataFrame) -> pd.DataFrame:
    """Per conversion node: input and output [tce] and the loss (input − output)."""
    conv = table[table["row"].isin(["conversion_input", "conversion_output"])]
    wide = conv.pivot_table(index=["node", "node_name"], columns="row", values="tce", aggfunc="sum").reset_index()
    for col in ("conversion_input", "conversion_output"):
        if col not in wide:
            wide[col] = np.nan
    wide = wide.rename(columns={"conversion_input": "input_tce", "conversion_output": "output_tce"})
    wide["loss_tce"] = wide["input_tce"] - wide["output_tce"]
    return wide[["node", "node_name", "input_tce", "output_tce", "loss_tce"]]


def balance_warnings(table: pd.DataFrame) -> list[str]:
    """What the table shows that no metered plant could do: residuals beyond a loss, negative losses."""
    warnings = []
    dist = table[table["row"] == "distribution"]
    for _, r in dist.iterrows():
        if r["quantity"] < 0:
            warnings.append(f"{r['node']} ({r['node_name']}): {-r['quantity']:.6g} {r['carrier']} more leaves than "
                            "enters: an input edge is missing from the topology or a meter reads high")
        elif r["quantity"] > DISTRIBUTION_RESIDUAL_MAX * r["throughput"]:
            warnings.append(f"{r['node']} ({r['node_name']}): the residual {r['quantity']:.6g} {r['carrier']} is more "
                            f"than {DISTRIBUTION_RESIDUAL_MAX:.0%} of its throughput: unmetered feeders, not loss")
    heat_pumps = set(table.loc[table["kind"].isin(HEAT_PUMP_KINDS), "node"])
    for _, r in conversion_losses(table).iterrows():
        if pd.notna(r["loss_tce"]) and r["loss_tce"] < 0 and r["node"] not in heat_pumps:
            warnings.append(f"{r['node']} ({r['node_name']}): output {r['output_tce']:.6g} tce exceeds input "
                            f"{r['input_tce']:.6g} tce; an input is not metered")
    return warnings


def boundary_check(table: pd.DataFrame, accounted: pd.DataFrame) -> pd.DataFrame:
    """The table's purchases and exports against the accounting's boundary rows, per carrier.

    ``accounted`` holds the entity's ``acc_energy`` rows (``flow``, ``carrier``, ``quantity``,
    signed). Returns ``carrier``, ``what`` (purchase, export), ``topology``, ``accounted``,
    ``difference`` and ``ok`` (within :data:`BOUNDARY_TOLERANCE`).
    """
    rows = []
    for what, row, flow, sign in (("purchase", "purchase", "input", 1.0), ("export", "export", "export", -1.0)):
        topo = table[table["row"] == row].groupby("carrier")["quantity"].sum()
        acc = sign * accounted[accounted["flow"] == flow].groupby("carrier")["quantity"].sum()
        for carrier in sorted(set(topo.index) | set(acc.index)):
            t, a = float(topo.get(carrier, 0.0)), float(acc.get(carrier, 0.0))
            diff = a - t
            ok = abs(diff) <= BOUNDARY_TOLERANCE * max(abs(a), abs(t), 1e-9)
            rows.append((carrier, what, t, a, diff, ok))
    return pd.DataFrame(rows, columns=["carrier", "what", "topology", "accounted", "difference", "ok"])
