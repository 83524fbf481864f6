"""The words of the reports, in Simplified Chinese (default) and English (docs/analysis.md §8)."""

from __future__ import annotations

from lingtan.park.carriers import CARRIER_UNITS, Carrier

TEXT: dict[str, tuple[str, str]] = {
    "day": ("能源与碳排放日报", "Daily energy and carbon report"),
    "month": ("能源与碳排放月报", "Monthly energy and carbon report"),
    "year": ("能源与碳排放年报", "Annual energy and carbon report"),
    "park": ("园区", "Park"), "entity": ("核算主体", "Entity"), "period": ("报告期", "Period"),
    "generated": ("生成时间", "Generated"), "basis": ("电力折标准煤方法", "Electricity coefficient basis"),
    "basis_dangliang": ("当量值", "calorific (当量值)"), "basis_dengjia": ("等价值", "primary-energy (等价值)"),
    "summary": ("概要", "Summary"), "energy": ("能源", "Energy"), "carbon": ("碳排放", "Carbon"), "cost": ("成本", "Cost"),
    "comparison": ("对比", "Comparison"), "top": ("重点能耗环节", "Key consumers"), "balance": ("能源平衡表", "Energy balance"),
    "recommendations": ("节能建议", "Recommendations"), "quality": ("数据质量", "Data quality"),
    "factors": ("所用因子及来源", "Factors and sources"), "intensities": ("能耗与碳排放强度", "Intensities"),
    "item": ("项目", "Item"), "value": ("数值", "Value"), "unit": ("单位", "Unit"),
    "comprehensive_tce": ("综合能耗", "Comprehensive energy consumption"),
    "feedstock_tce": ("其中：原料用能", "of which feedstock"), "non_production_tce": ("生活用能（不计入）", "Non-production (not counted)"),
    "renewable_self_tce": ("自用可再生能源电力", "Self-consumed on-site renewables"),
    "scope1_tco2": ("范围一排放", "Scope 1"), "scope2_tco2": ("范围二排放（基于位置）", "Scope 2, location-based"),
    "scope2_market_tco2": ("范围二排放（基于市场）", "Scope 2, market-based"),
    "total_tco2": ("总排放（基于位置）", "Total, location-based"), "total_market_tco2": ("总排放（基于市场）", "Total, market-based"),
    "total_cost": ("能源费用合计", "Total energy cost"),
    "carrier": ("能源品种", "Carrier"), "quantity": ("实物量", "Quantity"), "share": ("占比", "Share"),
    "indicator": ("指标", "Indicator"), "product": ("产品", "Product"),
    "category": ("排放源", "Source"), "scope": ("范围", "Scope"), "tco2": ("排放量 tCO₂（基于位置）", "tCO₂ location-based"),
    "tco2_market": ("排放量 tCO₂（基于市场）", "tCO₂ market-based"),
    "band": ("时段", "Band"), "price": ("单价", "Price"), "cny": ("费用（元）", "Cost (CNY)"),
    "energy_cost": ("能量费（元）", "Energy charge (CNY)"), "demand_cost": ("基本电费（元）", "Demand charge (CNY)"),
    "average_price": ("平均单价", "Average price"), "month_label": ("月份", "Month"), "demand_kw": ("最大需量 kW", "Max demand kW"),
    "previous": ("上期（环比）", "Previous period"), "last_year": ("去年同期（同比）", "Same period last year"),
    "base": ("对比期", "Base"), "current": ("本期", "Current"), "change": ("变化", "Change"), "change_ratio": ("变化率", "Change %"),
    "consumer": ("用能单元", "Unit"), "cumulative_share": ("累计占比", "Cumulative"), "key": ("重点", "Key"),
    "row": ("项目", "Item"), "node": ("节点", "Node"), "closure": ("平衡差", "Imbalance"), "warnings": ("提示", "Warnings"),
    "rule": ("建议", "Recommendation"), "subject": ("对象", "Subject"), "saving_cny": ("年节约（元）", "Saving CNY/a"),
    "saving_tce": ("年节能 tce", "Saving tce/a"), "saving_tco2": ("年减排 tCO₂", "Saving tCO₂/a"), "method": ("估算方法", "Estimate"),
    "status": ("状态", "Status"),
    "hours_accounted": ("已核算小时数", "Hours accounted"), "hours_expected": ("报告期小时数", "Hours in the period"),
    "coverage": ("核算覆盖率", "Coverage"), "quarantined": ("隔离的计量区间", "Quarantined intervals"),
    "point": ("测点", "Point"), "from": ("起", "From"), "to": ("止", "To"), "measured": ("读数", "Measured"),
    "limit": ("上限", "Limit"), "factor": ("因子", "Factor"), "kind": ("类型", "Kind"), "source": ("来源", "Source"),
    "confidence": ("可信度", "Confidence"), "missing": ("本节无数据：", "Not available: "), "none": ("无", "None"),
    "row_purchase": ("购入", "Purchase"), "row_own_generation": ("自产", "Own generation"),
    "row_conversion_input": ("加工转换投入", "Conversion input"), "row_conversion_output": ("加工转换产出", "Conversion output"),
    "row_storage_charge": ("储存（充）", "Storage charge"), "row_storage_discharge": ("储存（放）", "Storage discharge"),
    "row_distribution": ("输配损失及未计量", "Distribution loss and unmetered"), "row_end_use": ("终端使用", "End use"),
    "row_export": ("外供", "Export"),
    "rule_valley_shift": ("负荷移至谷段", "Shift load to the valley"), "rule_baseload_high": ("夜间基荷偏高", "Night base load high"),
    "rule_peak_shaving": ("削减最大需量", "Shave the demand peak"), "rule_efficiency_drop": ("设备效率下降", "Efficiency dropped"),
    "rule_contract_demand": ("调整合同最大需量", "Change the contract demand"),
    "rule_pv_export": ("光伏余电低价上网", "PV exported at a low price"),
    "rule_product_limit": ("单位产品能耗对标", "Product consumption vs its limit"),
    "band_critical_peak": ("尖峰", "Critical peak"), "band_peak": ("峰", "Peak"), "band_flat": ("平", "Flat"),
    "band_valley": ("谷", "Valley"), "band_deep_valley": ("深谷", "Deep valley"),
    "category_fuel_combustion": ("化石燃料燃烧", "Fuel combustion"), "category_process": ("工业生产过程", "Industrial processes"),
    "category_purchased_electricity": ("购入电力", "Purchased electricity"),
    "category_exported_electricity": ("输出电力（扣减）", "Exported electricity (deducted)"),
    "category_purchased_heat": ("购入热力", "Purchased heat"), "category_exported_heat": ("输出热力（扣减）", "Exported heat (deducted)"),
    "category_green_electricity": ("绿色电力", "Green electricity"), "category_biomass": ("生物质（单独报告）", "Biomass (reported apart)"),
}
CARRIERS: dict[str, tuple[str, str]] = {
    "electricity": ("电力", "Electricity"), "natural_gas": ("天然气", "Natural gas"), "steam": ("蒸汽", "Steam"),
    "heat": ("热力", "Heat"), "diesel": ("柴油", "Diesel"), "gasoline": ("汽油", "Gasoline"), "coal": ("原煤", "Coal"),
    "lpg": ("液化石油气", "LPG"), "biomass": ("生物质", "Biomass"), "water": ("水", "Water"), "cooling": ("冷量", "Cooling"),
}



def t(key: str, lang: str) -> str:
    zh, en = TEXT[key]
    return en if lang == "en" else zh


def carrier(name: str, lang: str) -> str:
    zh, en = CARRIERS.get(name, (name, name))
    return en if lang == "en" else zh


def maybe(key: str, lang: str, fallback: str) -> str:
    """The text of ``key`` if there is one, else ``fallback`` (e.g. an emission category without a translation)."""
    return t(key, lang) if key in TEXT else fallback


def unit_of(name: str) -> str:
    """The canonical unit of a carrier's quantities (kWh, m3, t, GJ, L)."""
    return CARRIER_UNITS[Carrier(name)].counter if name in Carrier.__members__ else ""
