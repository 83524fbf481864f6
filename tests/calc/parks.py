"""Small park models shared by the calc-service tests."""

PARK_AB = """
park: {id: ex2, name: example 2, province: 江苏, grid_region: east_china, location: {latitude: 31.5, longitude: 120.3}}
devices:
  - {id: scada, protocol: opcua}
enterprises:
  - id: A
    name: 园区综合能源服务公司
    credit_code: 91320214MA20EN001H
    industry_code: D4412
    units:
      - id: a-station
        name: station
        meters:
          - id: m-grid
            name: 关口表
            carrier: electricity
            device: scada
            points:
              - {id: m-grid.import, kind: counter, unit: kWh, role: grid_import, opcua: {node_id: "ns=2;s=imp"}}
              - {id: m-grid.export, kind: counter, unit: kWh, role: grid_export, opcua: {node_id: "ns=2;s=exp"}}
          - id: m-pv
            name: 光伏
            carrier: electricity
            device: scada
            points:
              - {id: m-pv.total, kind: counter, unit: MWh, role: pv, opcua: {node_id: "ns=2;s=pv"}}
          - id: m-steam
            name: 外购蒸汽
            carrier: steam
            device: scada
            points:
              - {id: m-steam.total, kind: counter, unit: t, opcua: {node_id: "ns=2;s=st"}}
  - id: B
    name: 制造企业
    credit_code: 91320214MA20EN002L
    industry_code: C2927
    units:
      - id: b-line
        name: line
        meters:
          - id: m-b-elec
            name: B 进线
            carrier: electricity
            parent: m-grid
            device: scada
            points:
              - {id: m-b-elec.total, kind: counter, unit: kWh, role: consumption, opcua: {node_id: "ns=2;s=be"}}
          - id: m-b-steam
            name: B 蒸汽
            carrier: steam
            parent: m-steam
            device: scada
            points:
              - {id: m-b-steam.total, kind: counter, unit: kg, opcua: {node_id: "ns=2;s=bs"}}
"""
