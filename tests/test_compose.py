"""The production docker-compose stack: docker-compose.yml, .env.example, the two Dockerfiles and deploy/compose/.

There is no Docker engine in the test environment, so nothing is started: `docker-compose config` (Debian's
docker-compose 1.29, installed by scripts/install-system-deps.sh; `docker compose` v2 also works) validates and
interpolates the file with .env.example, and the rest is read from the YAML and checked against the code the
containers run: pinned images, mounts that exist, one service with published ports, restart policies,
healthchecks, no secret in the file, every variable defined in .env.example, the auth proxy's fixed addresses in
Grafana's whitelist, service wiring that lingtan's Settings accept, commands the `lingtan` CLI knows, and a
deploy/compose/telegraf.conf that is what `lingtan telegraf-config` generates today.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
APP_DOCKERFILE = ROOT / "Dockerfile"
GRAFANA_DOCKERFILE = ROOT / "grafana" / "Dockerfile"
TELEGRAF_CONF = ROOT / "deploy" / "compose" / "telegraf.conf"
NOTIFY_YAML = ROOT / "deploy" / "compose" / "notify.yaml"
INFLUX_INIT = ROOT / "influx" / "compose-init" / "10-v1-auth.sh"
MOSQUITTO_ENTRYPOINT = ROOT / "deploy" / "compose" / "mosquitto-entrypoint.sh"

APP_IMAGE = "lingtan/app"
#: services that keep state or that others wait for: each needs a healthcheck
HEALTHCHECKED = {"influxdb", "postgres", "mosquitto", "grafana", "calc-service", "auth-proxy", "notifier"}
#: the only service that may publish ports, and the container ports it publishes
FRONT_DOOR, FRONT_DOOR_PORTS = "auth-proxy", {8443, 8080}
#: services without a profile, i.e. `docker compose up` starts them
CORE = {"influxdb", "postgres", "mosquitto", "grafana", "collector-opcua", "collector-modbus", "collector-mqtt",
        "calc-service", "auth-proxy", "notifier"}
PROFILES = {"demo": {"simulator"}, "telegraf": {"telegraf"}}
#: the settings deploy/compose/telegraf.conf is generated with: the compose service names as endpoints, and an
#: MQTT user name so that the generated file logs in (only its presence matters: the file names env variables)
TELEGRAF_SETTINGS = {"influx_url": "http://influxdb:8086", "opcua_endpoint": "opc.tcp://simulator:4840",
                     "modbus_host": "simulator", "mqtt_host": "mosquitto", "mqtt_username": "lingtan"}
#: variables of .env.example that docker compose reads itself rather than the compose file
COMPOSE_OWN_VARS = {"COMPOSE_PROJECT_NAME"}
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|SECRET_KEY)$|_KEY$")
VAR_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
REQUIRED_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*):?\?")


# --------------------------------------------------------------------------- helpers


def _raw() -> dict:
    """docker-compose.yml as YAML (anchors and merge keys resolved, ${...} not interpolated)."""
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _services() -> dict[str, dict]:
    return _raw()["services"]


def _uncommented(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def _env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        assert key not in out, f"{path.name}: {key} defined twice"
        out[key] = value
    return out


def _compose_cmd() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    pytest.fail("docker-compose is not installed: `make test` installs it (scripts/install-system-deps.sh)")


def _run_config(env_file: Path, profiles: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    # the shell environment overrides the env file in compose: keep it from leaking into the result
    keys = set(_env_file(ENV_EXAMPLE))
    env = {k: v for k, v in os.environ.items() if k not in keys and not k.startswith("COMPOSE_")}
    cmd = [*_compose_cmd(), "-f", str(COMPOSE), "--env-file", str(env_file)]
    for p in profiles:
        cmd += ["--profile", p]
    return subprocess.run([*cmd, "config"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


_CONFIGS: dict[tuple[str, ...], dict] = {}


def _config(*profiles: str) -> dict:
    """The interpolated configuration with .env.example and ``profiles`` (computed once per profile set)."""
    if profiles not in _CONFIGS:
        r = _run_config(ENV_EXAMPLE, profiles)
        assert r.returncode == 0, f"docker compose config failed:\n{r.stderr}"
        _CONFIGS[profiles] = yaml.safe_load(r.stdout)
    return _CONFIGS[profiles]


def _pinned(image: str) -> bool:
    """An explicit tag with a digit that is not `latest`, or a digest."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag != "latest" and any(c.isdigit() for c in tag)


def _project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment must be a mapping (KEY: value), not a list"
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _clean_lingtan_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("LINGTAN_"):
            monkeypatch.delenv(key)


# --------------------------------------------------------------------------- docker compose config


@pytest.mark.parametrize("profiles", [(), ("demo",), ("telegraf",), ("demo", "telegraf")],
                         ids=["default", "demo", "telegraf", "demo+telegraf"])
def test_compose_config_is_valid(profiles: tuple[str, ...]) -> None:
    services = _config(*profiles)["services"]
    expected = CORE.union(*(PROFILES[p] for p in profiles))
    assert expected <= set(services), f"missing services: {sorted(expected - set(services))}"


def test_profiles_gate_the_optional_services() -> None:
    services = _services()
    assert {name for name, s in services.items() if not s.get("profiles")} == CORE
    for profile, names in PROFILES.items():
        for name in names:
            assert services[name].get("profiles") == [profile], name


def test_compose_refuses_to_start_without_a_required_secret(tmp_path: Path) -> None:
    env = _env_file(ENV_EXAMPLE)
    del env["POSTGRES_PASSWORD"]
    incomplete = tmp_path / "incomplete.env"
    incomplete.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    r = _run_config(incomplete)
    assert r.returncode != 0
    assert "set in .env" in r.stderr


# --------------------------------------------------------------------------- images


def test_every_image_is_pinned() -> None:
    version = _project_version()
    for name, service in _services().items():
        image = service.get("image")
        assert image, f"{name}: no image (built services need a pinned image tag too)"
        assert _pinned(image), f"{name}: image {image!r} is not pinned to an exact version"
        if "build" in service:
            assert image.startswith("lingtan/"), f"{name}: a built image must be named lingtan/..., not {image!r}"
            assert image.endswith(f":{version}"), f"{name}: built image {image!r} is not tagged {version} (pyproject)"


def test_app_services_share_one_app_image() -> None:
    version = _project_version()
    app = {name for name, s in _services().items() if s["image"].startswith(APP_IMAGE + ":")}
    assert app == {"collector-opcua", "collector-modbus", "collector-mqtt", "calc-service", "auth-proxy", "notifier",
                   "simulator"}
    for name in app:
        s = _services()[name]
        assert s["image"] == f"{APP_IMAGE}:{version}"
        assert s["build"] == {"context": ".", "dockerfile": "Dockerfile"}, name


@pytest.mark.parametrize("dockerfile", [APP_DOCKERFILE, GRAFANA_DOCKERFILE], ids=["app", "grafana"])
def test_dockerfile_base_images_are_pinned(dockerfile: Path) -> None:
    text = dockerfile.read_text(encoding="utf-8")
    stages: set[str] = set()
    bases = []
    for line in text.splitlines():
        if m := re.match(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE):
            base, stage = m.groups()
            if base not in stages:
                bases.append(base)
            if stage:
                stages.add(stage)
    assert bases, f"{dockerfile}: no FROM"
    for base in bases:
        assert "$" not in base and _pinned(base), f"{dockerfile.name}: base image {base!r} is not pinned"


def test_app_image_runs_lingtan_as_non_root() -> None:
    text = APP_DOCKERFILE.read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the app image must end as a non-root USER"
    assert re.search(r'^ENTRYPOINT \["lingtan"\]', text, re.MULTILINE)
    assert re.search(r"pip (install|wheel)[^\n]* \.", text), "the image must install the project (pip install .)"
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for private in (".env", ".git", ".venv", "var"):
        assert private in ignored, f".dockerignore must exclude {private}"


def test_grafana_image_bakes_pinned_plugins_outside_the_volume() -> None:
    text = GRAFANA_DOCKERFILE.read_text(encoding="utf-8")
    installs = re.findall(r"plugins install (\S+)(?: (\S+))?", text)
    used = set()
    for board in (ROOT / "dashboards").glob("*.json"):
        used |= set(re.findall(r'"type": "([a-z0-9]+-[a-z0-9-]+-panel)"', board.read_text(encoding="utf-8")))
    assert used <= {plugin for plugin, _ in installs}, f"dashboards use plugins the image lacks: {used}"
    for plugin, version in installs:
        assert version and re.fullmatch(r"\d+\.\d+\.\d+", version), f"plugin {plugin} is not pinned to a version"
    assert re.search(r"GF_PATHS_PLUGINS=/var/lib/grafana-plugins", text), "plugins must live outside /var/lib/grafana"
    assert "COPY" in text and "grafana.ini /etc/grafana/grafana.ini" in text
    env = _env(_services()["grafana"])
    assert env["GF_PLUGINS_PREINSTALL_DISABLED"] == "true"
    assert env["GF_PLUGINS_PREINSTALL_AUTO_UPDATE"] == "false"


# --------------------------------------------------------------------------- mounts, ports, restart, health


def test_bind_mounted_paths_and_build_contexts_exist() -> None:
    for name, service in _services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith(("/", "~")):
                pytest.fail(f"{name}: bind mount {source!r} is outside the repository")
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: bind-mounted {source} does not exist"
            else:
                assert source in _raw()["volumes"], f"{name}: volume {source!r} is not a declared named volume"
        if build := service.get("build"):
            context = ROOT / build["context"]
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), f"{name}: no Dockerfile in {context}"


def test_scripts_run_by_the_containers() -> None:
    # the influxdb image runs /docker-entrypoint-initdb.d/*.sh with run-parts: executables only
    assert os.access(INFLUX_INIT, os.X_OK), f"{INFLUX_INIT} must be executable"
    for script, shell in ((INFLUX_INIT, "bash"), (MOSQUITTO_ENTRYPOINT, "sh")):
        r = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
        assert r.returncode == 0, f"{script}: {r.stderr}"


def test_only_the_auth_proxy_publishes_ports() -> None:
    for name, service in _services().items():
        assert service.get("network_mode") != "host", f"{name}: host networking bypasses the front door"
        if name != FRONT_DOOR:
            assert not service.get("ports"), f"{name} publishes ports; only {FRONT_DOOR} may"
    published = _config()["services"][FRONT_DOOR]["ports"]
    targets = {int(str(p["target"] if isinstance(p, dict) else p).split(":")[-1].split("/")[0]) for p in published}
    assert targets == FRONT_DOOR_PORTS


def test_every_service_has_a_restart_policy() -> None:
    for name, service in _services().items():
        assert service.get("restart") in ("unless-stopped", "always"), f"{name}: restart policy"


def test_healthchecks_and_dependencies() -> None:
    services = _services()
    for name in HEALTHCHECKED:
        test = services[name].get("healthcheck", {}).get("test")
        assert test and test != ["NONE"], f"{name}: no healthcheck"
    for name, service in services.items():
        deps = service.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on must use the long form with conditions"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            # a dependency in a profile the dependant does not share would not be started
            assert not services[dep].get("profiles") or set(services[dep]["profiles"]) <= set(
                service.get("profiles", [])), f"{name} depends on {dep}, which is in a profile"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy; it has no healthcheck"
        for dep in ("influxdb", "postgres", "mosquitto"):
            if dep in deps and "healthcheck" in services[dep]:
                assert deps[dep]["condition"] == "service_healthy", f"{name} should wait until {dep} is healthy"


def test_state_lives_in_named_volumes() -> None:
    services = _services()

    def mounts(name: str) -> dict[str, str]:
        return {v.split(":")[1]: v.split(":")[0] for v in services[name].get("volumes", [])}

    assert mounts("influxdb")["/var/lib/influxdb2"] == "influxdb-data"
    assert mounts("postgres")["/var/lib/postgresql/data"] == "postgres-data"
    assert mounts("grafana")["/var/lib/grafana"] == "grafana-data"
    assert mounts("mosquitto")["/mosquitto/data"] == "mosquitto-data"
    # the proxy's pki/ and proxy/secret.key are in a volume of its own
    assert mounts("auth-proxy")["/var/lib/lingtan"] == "proxy-state"
    for name in services:
        if name != "auth-proxy":
            assert "proxy-state" not in mounts(name).values(), f"{name} must not mount the proxy's state"
    for name in ("collector-opcua", "collector-modbus", "collector-mqtt"):
        assert mounts(name)["/var/lib/lingtan"] == "collector-state", name  # the store-and-forward buffer


# --------------------------------------------------------------------------- secrets and .env.example


def test_no_secret_literals_in_the_compose_file() -> None:
    for name, service in _services().items():
        for key, value in _env(service).items():
            if SECRET_NAME.search(key):
                assert value.startswith("${") and value.endswith("}"), \
                    f"{name}: {key} must come from .env as ${{...}}, not a literal"
            for userinfo in re.findall(r"://([^/@]+)@", value):  # scheme://user:password@host
                _user, _, password = re.sub(r"\$\{[^}]*\}", "$VAR", userinfo).partition(":")
                assert password in ("", "$VAR"), f"{name}: {key} has a literal password in its URL"
    text = _uncommented(COMPOSE.read_text(encoding="utf-8"))
    for m in re.finditer(r"(?:-P|--password)\s+(\S+)", text):
        assert m.group(1).strip("\\\"'").startswith("$"), f"literal password on a command line: {m.group(0)}"


def test_env_example_defines_every_variable_and_no_real_secrets() -> None:
    example = _env_file(ENV_EXAMPLE)
    text = _uncommented(COMPOSE.read_text(encoding="utf-8"))
    referenced = set(VAR_REF.findall(text))
    assert referenced - set(example) == set(), f".env.example lacks {sorted(referenced - set(example))}"
    unused = set(example) - referenced - COMPOSE_OWN_VARS
    assert not unused, f".env.example defines variables the compose file does not use: {sorted(unused)}"
    for var in set(REQUIRED_REF.findall(text)):
        assert example[var], f"required variable {var} is empty in .env.example"
    for key, value in example.items():
        if SECRET_NAME.search(key) and value:
            assert value.startswith("change-me"), f".env.example: {key} must be a change-me placeholder"
    assert len(example["LINGTAN_NOTIFY_TOKEN"]) >= 16  # the notifier refuses shorter tokens


# --------------------------------------------------------------------------- networks and wiring


def test_internal_network_and_the_proxy_address_grafana_trusts() -> None:
    config = _config()
    networks, services = config["networks"], config["services"]
    assert networks["backend"].get("internal") is True
    for name, service in services.items():
        assert "backend" in service["networks"], f"{name} is not on the backend network"
    for name in ("influxdb", "postgres", "mosquitto", "calc-service"):
        assert list(services[name]["networks"]) == ["backend"], f"{name} needs no route out"
    proxy_nets = services[FRONT_DOOR]["networks"]
    addresses = {}
    for net, spec in proxy_nets.items():
        address = ipaddress.ip_address(spec["ipv4_address"])
        subnet = ipaddress.ip_network(networks[net]["ipam"]["config"][0]["subnet"])
        assert address in subnet, f"the proxy address {address} is outside {net} {subnet}"
        addresses[net] = str(address)
    grafana = services["grafana"]
    whitelist = {a.strip() for a in grafana["environment"]["LINGTAN_PROXY_IP"].split(",") if a.strip()}
    shared = set(grafana["networks"]) & set(proxy_nets)
    # grafana.ini: whitelist = $__env{LINGTAN_PROXY_IP}; empty would trust every peer
    assert whitelist == {addresses[n] for n in shared}
    assert "$__env{LINGTAN_PROXY_IP}" in (ROOT / "grafana" / "grafana.ini").read_text(encoding="utf-8")


def test_services_find_each_other_and_settings_accept_their_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from lingtan.park.model import Protocol
    from lingtan.settings import Settings
    from lingtan_collectors.run import collector_name

    _clean_lingtan_env(monkeypatch)
    services = _config("demo")["services"]
    env = {name: {k: str(v) for k, v in (s.get("environment") or {}).items()} for name, s in services.items()}
    for name, e in env.items():
        if services[name]["image"].startswith(APP_IMAGE + ":"):
            fields = {k[len("LINGTAN_"):].lower(): v for k, v in e.items()
                      if k.startswith("LINGTAN_") and k[len("LINGTAN_"):].lower() in Settings.model_fields}
            Settings(**fields)  # raises on a value lingtan would refuse at start-up
    proxy, calc = env[FRONT_DOOR], env["calc-service"]
    assert calc["LINGTAN_CALC_HOST"] == "0.0.0.0"
    assert proxy["LINGTAN_CALC_HOST"] == "calc-service" and proxy["LINGTAN_CALC_PORT"] == calc["LINGTAN_CALC_PORT"]
    assert proxy["LINGTAN_PROXY_BIND"] == "0.0.0.0"
    assert urlparse(proxy["LINGTAN_GRAFANA_URL"]).hostname == "grafana"
    assert urlparse(proxy["LINGTAN_PROXY_PUBLIC_URL"]).scheme == "https"
    assert env["grafana"]["GF_SERVER_ROOT_URL"] == proxy["LINGTAN_PROXY_PUBLIC_URL"] + "/grafana/"
    notify_url = urlparse(env["grafana"]["LINGTAN_NOTIFY_URL"])
    assert (notify_url.hostname, notify_url.port) == ("notifier", int(env["notifier"]["LINGTAN_NOTIFY_PORT"]))
    assert notify_url.path == "/api/v1/grafana"
    assert env["notifier"]["LINGTAN_NOTIFY_HOST"] == "0.0.0.0"
    assert env["grafana"]["LINGTAN_NOTIFY_TOKEN"] == env["notifier"]["LINGTAN_NOTIFY_TOKEN"]
    assert env["grafana"]["GRAFANA_INFLUX_USER"] == env["influxdb"]["GRAFANA_INFLUX_USER"]
    assert env["grafana"]["GRAFANA_INFLUX_PASSWORD"] == env["influxdb"]["GRAFANA_INFLUX_PASSWORD"]
    for name in ("collector-opcua", "collector-modbus", "collector-mqtt", "calc-service", FRONT_DOOR):
        assert urlparse(env[name]["LINGTAN_INFLUX_URL"]).hostname == "influxdb", name
        assert env[name]["LINGTAN_INFLUX_USER"] == env["influxdb"]["LINGTAN_INFLUX_USER"], name
        assert env[name]["LINGTAN_INFLUX_PASSWORD"] == env["influxdb"]["LINGTAN_INFLUX_PASSWORD"], name
    for name in ("calc-service", FRONT_DOOR, "notifier"):
        url = urlparse(env[name]["LINGTAN_DATABASE_URL"])
        assert url.scheme == "postgresql+psycopg" and url.hostname == "postgres", name
        assert url.password == env["postgres"]["POSTGRES_PASSWORD"] and url.username == env["postgres"]["POSTGRES_USER"]
    for protocol in Protocol:
        service = collector_name(protocol)
        assert service in services, f"no service {service}"
        assert f"run/{service}.status.json" in " ".join(services[service]["healthcheck"]["test"])
    # the demo simulator serves on all interfaces; the collectors reach it by service name
    sim = env["simulator"]
    assert urlparse(sim["LINGTAN_OPCUA_ENDPOINT"]).hostname == "0.0.0.0" and sim["LINGTAN_MODBUS_HOST"] == "0.0.0.0"
    assert urlparse(env["collector-opcua"]["LINGTAN_OPCUA_ENDPOINT"]).port == urlparse(
        sim["LINGTAN_OPCUA_ENDPOINT"]).port
    assert env["collector-modbus"]["LINGTAN_MODBUS_PORT"] == sim["LINGTAN_MODBUS_PORT"]
    assert env["collector-mqtt"]["LINGTAN_MQTT_HOST"] == sim["LINGTAN_MQTT_HOST"] == "mosquitto"
    mqtt_users = {env["mosquitto"]["LINGTAN_MQTT_USERNAME"]: env["mosquitto"]["LINGTAN_MQTT_PASSWORD"],
                  env["mosquitto"]["MQTT_DEVICE_USERNAME"]: env["mosquitto"]["MQTT_DEVICE_PASSWORD"]}
    for name in ("collector-mqtt", "simulator", "telegraf"):
        e = env[name] if name != "telegraf" else {k: str(v) for k, v in
                                                  _config("telegraf")["services"]["telegraf"]["environment"].items()}
        assert mqtt_users.get(e["LINGTAN_MQTT_USERNAME"]) == e["LINGTAN_MQTT_PASSWORD"], f"{name}: MQTT login"


def _lingtan_commands(service: dict) -> list[list[str]]:
    command = service.get("command") or []
    if service.get("entrypoint"):  # a shell command line that runs lingtan
        line = " ".join(command)
        return [m.split() for m in re.findall(r"\blingtan((?: [a-z][a-z-]*)+)", line)]
    return [list(command)]


def test_app_commands_are_lingtan_commands() -> None:
    from lingtan.cli import build_parser

    seen = set()
    for name, service in _services().items():
        if not service["image"].startswith(APP_IMAGE + ":"):
            continue
        commands = _lingtan_commands(service)
        assert commands, f"{name}: no lingtan command"
        for argv in commands:
            seen.add(" ".join(argv[:2]))
            try:
                build_parser().parse_args(argv)
            except SystemExit:
                pytest.fail(f"{name}: `lingtan {' '.join(argv)}` is not a command of the lingtan CLI")
    # the front door serves HTTPS and the plain-HTTP redirect in one service (the only one with ports)
    assert {"proxy serve", "proxy redirect", "calc serve", "notify serve", "simulate"} <= seen


def test_the_app_image_ships_every_lingtan_package() -> None:
    """The Dockerfile builds wheels of the core and of every workspace folder: a distribution it leaves out,
    or a core subpackage missing from pyproject's explicit list, is not in the image."""
    packages = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {"lingtan." + ".".join(p.parent.relative_to(ROOT / "lingtan").parts)
             for p in (ROOT / "lingtan").glob("*/**/__init__.py")}
    assert found - packages == set(), f"pyproject.toml [tool.setuptools] packages lacks {sorted(found - packages)}"
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    wheel_line = next(line for line in dockerfile.splitlines() if line.startswith("RUN pip wheel"))
    for project in sorted(ROOT.glob("*/pyproject.toml")):
        folder = project.parent.name
        assert f"COPY {folder}/ {folder}/" in dockerfile and f"./{folder}" in wheel_line.split(), \
            f"the Dockerfile does not build {folder}/"
        name = tomllib.loads(project.read_text(encoding="utf-8"))["project"]["name"]
        assert f" {name} " in dockerfile, f"the Dockerfile does not install {name}"


# --------------------------------------------------------------------------- generated and mounted configs


def test_telegraf_conf_is_current(monkeypatch: pytest.MonkeyPatch) -> None:
    from lingtan.park import load_park
    from lingtan.settings import DEMO_PARK, Settings
    from lingtan_collectors.telegraf import telegraf_config

    _clean_lingtan_env(monkeypatch)
    expected = telegraf_config(load_park(DEMO_PARK), Settings(**TELEGRAF_SETTINGS))
    assert TELEGRAF_CONF.read_text(encoding="utf-8") == expected, (
        "deploy/compose/telegraf.conf is stale; regenerate it with the command in docker-compose.yml (service telegraf)")
    telegraf = _services()["telegraf"]
    assert "./deploy/compose/telegraf.conf:/etc/telegraf/telegraf.conf:ro" in telegraf["volumes"]
    wanted = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", expected))
    assert wanted <= set(_env(telegraf)), f"telegraf lacks environment variables {sorted(wanted - set(_env(telegraf)))}"
    for url in re.findall(r'"((?:http|tcp|opc\.tcp)://[^"]+)"', expected):
        host = urlparse(url).hostname
        assert host in _services(), f"telegraf.conf points at {url}, not at a compose service"


def test_grafana_gets_every_variable_its_provisioning_names() -> None:
    # Grafana expands ${VAR} from its environment in provisioning files (not in alert-rule queries and
    # annotations, which keep $timeFilter, $labels etc.); an unset variable silently becomes ""
    env = _config()["services"]["grafana"]["environment"]
    for path in (ROOT / "grafana" / "provisioning").rglob("*.yaml"):
        for var in VAR_REF.findall(_uncommented(path.read_text(encoding="utf-8"))):
            assert env.get(var), f"{path.relative_to(ROOT)} needs {var}; grafana's environment lacks it"
    mounts = _services()["grafana"]["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    provider = yaml.safe_load((ROOT / "grafana" / "provisioning" / "dashboards" / "lingtan.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert f"./dashboards:{path}:ro" in mounts


def test_notifier_config_is_valid_and_its_secrets_are_passed() -> None:
    from lingtan_notify.config import parse_config

    raw = yaml.safe_load(NOTIFY_YAML.read_text(encoding="utf-8"))
    cfg = parse_config(raw, str(NOTIFY_YAML), environ={"LINGTAN_NOTIFY_TOKEN": "x" * 32})
    notifier = _services()["notifier"]
    env = _env(notifier)
    assert env["LINGTAN_NOTIFY_CONFIG"] == "/etc/lingtan/notify.yaml"
    assert "./deploy/compose/notify.yaml:/etc/lingtan/notify.yaml:ro" in notifier["volumes"]
    for secret in cfg.secret_fields():
        var = secret[1]  # (field path, environment variable name, ...)
        assert var in env, f"notify.yaml names {var}; the notifier's environment lacks it"
    example = yaml.safe_load((ROOT / "notifier" / "src" / "lingtan_notify" / "notify.example.yaml").read_text(encoding="utf-8"))
    for var in re.findall(r"'?([A-Z][A-Z0-9_]+)'?", " ".join(
            str(v) for k, v in _walk(example) if k.endswith("_env"))):
        assert var in env, f"the example notify.yaml names {var}; pass it to the notifier"


def _walk(node, key: str = ""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, key)
    else:
        yield key, node


def test_influx_init_maps_the_retention_policies_lingtan_uses() -> None:
    from lingtan_calc.adapters.derived import RP as ACCOUNTING_RP

    script = INFLUX_INIT.read_text(encoding="utf-8")
    for rp in ("raw", ACCOUNTING_RP, "autogen"):
        assert re.search(rf"v1 dbrp create [^\n]*--rp {rp}\b", script), f"no DBRP mapping for lingtan/{rp}"
    assert re.search(r"--rp raw [^\n]*--default", script), "lingtan/raw must be the default (collectors omit rp)"
    assert "db=lingtan" in script
    influxdb = _services()["influxdb"]
    assert "./influx/compose-init:/docker-entrypoint-initdb.d:ro" in influxdb["volumes"]
    env = _env(influxdb)
    for var in re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", script):
        if var.startswith("DOCKER_INFLUXDB_INIT_") and var.endswith("_ID"):
            continue  # exported by the image's entrypoint after setup
        assert var in env, f"10-v1-auth.sh needs {var}; the influxdb service does not pass it"
    mosquitto = _env(_services()["mosquitto"])
    for var in re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", MOSQUITTO_ENTRYPOINT.read_text(encoding="utf-8")):
        assert var in mosquitto, f"mosquitto-entrypoint.sh needs {var}"
