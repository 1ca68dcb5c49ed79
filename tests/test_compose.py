"""docker-compose.yml, read as Docker Compose would, against the worker's own parser.

No Docker engine runs here, so the file is checked for what `docker compose up --scale
worker=3` needs: each worker its own data volume and host port, settings that the
worker command really reads, and a broker address the broker advertises.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.cli import build_parser
from streams.cli.common import connection

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document["services"]  # type: ignore[no-any-return]


def worker_args(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                environment: dict[str, Any]) -> Any:
    for name in [n for n in os.environ if n.startswith("SEGSTREAM_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    return build_parser().parse_args(service["command"])


def test_scaled_workers_each_have_their_own_data_volume(services: dict[str, Any]) -> None:
    worker = services["worker"]
    data_dir = worker["environment"]["SEGSTREAM_DATA_DIR"]
    # a named volume (name:/data) would be one directory for every replica, and the
    # second worker on it stops; an anonymous one is per container
    assert data_dir in worker["volumes"], worker["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)[-1]
    # a new volume takes the owner of the image's directory: the worker must write there
    assert re.search(rf"mkdir {re.escape(data_dir)} && chown {user} {re.escape(data_dir)}",
                     dockerfile), "the image does not give the worker its data directory"


def test_scaled_workers_do_not_fight_over_a_host_port(services: dict[str, Any],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    worker = services["worker"]
    args = worker_args(worker, monkeypatch, worker["environment"])
    for port in worker["ports"]:
        # "6066" or "127.0.0.1::6066": the container port only, the host's ephemeral
        assert ":" not in str(port).replace("::", ""), f"fixed host port in {port!r}"
        assert int(str(port).rsplit(":", 1)[-1]) == args.web_port
    assert args.web_host == "0.0.0.0", "the API would be unreachable from the host"


def test_workers_bound_beyond_loopback_need_a_token_from_the_host(
        services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.web_auth import is_loopback

    worker = services["worker"]
    args = worker_args(worker, monkeypatch, worker["environment"])
    assert not is_loopback(args.web_host)
    # Compose's ${NAME:?message}: the variable comes from the host, and without it
    # `docker compose up` stops with the message instead of starting an open API
    value = worker["environment"]["SEGSTREAM_WEB_TOKEN"]
    assert re.fullmatch(r"\$\{SEGSTREAM_WEB_TOKEN:\?[^}]+\}", value), value
    assert args.web_token == value and args.web_token_file is None


def worker_reads(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                 environment: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The worker's flags and its Kafka connection: the broker address is read from the
    environment when the connection is resolved (after --kafka-config), not by the parser."""
    args = worker_args(service, monkeypatch, environment)
    return vars(args), connection(args)


def test_every_setting_is_one_the_worker_reads(services: dict[str, Any],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    worker = services["worker"]
    environment = worker["environment"]
    configured = worker_reads(worker, monkeypatch, environment)
    for name in environment:
        assert name.startswith("SEGSTREAM_"), name
        without = worker_reads(worker, monkeypatch,
                               {k: v for k, v in environment.items() if k != name})
        assert without != configured, f"{name} changes nothing: the worker does not read it"
    flags = configured[0]
    assert flags["partitions"] >= 3 and flags["standby_replicas"] >= 1


def test_the_workers_reach_the_broker_where_it_advertises(services: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    worker, kafka = services["worker"], services["kafka"]
    bootstrap = worker_reads(worker, monkeypatch, worker["environment"])[1].bootstrap
    advertised = kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
    addresses = {listener.split("://", 1)[1] for listener in advertised}
    assert bootstrap in addresses, (bootstrap, addresses)
    assert bootstrap.split(":")[0] in services
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"


MONITORING = ("prometheus", "grafana")


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the repository file a service mounts there (``./`` sources)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("./"):
            mounts[target] = ROOT / source
    return mounts


def test_monitoring_is_behind_a_profile(services: dict[str, Any]) -> None:
    # `docker compose up` stays the broker and the workers; `--profile monitoring` adds these
    for name in MONITORING:
        assert services[name]["profiles"] == ["monitoring"], name
    assert "profiles" not in services["kafka"] and "profiles" not in services["worker"]
    for name in MONITORING:
        for port in services[name]["ports"]:
            assert str(port).startswith("127.0.0.1:"), f"{name} open beyond this machine"
        for target, source in _mounts(services[name]).items():
            assert source.exists(), f"{name} mounts {source} at {target}: no such file"


def test_prometheus_scrapes_every_worker_where_it_serves_metrics(
        services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.web_auth import METRICS

    prometheus = services["prometheus"]
    config_path = next(p for t, p in _mounts(prometheus).items() if t.endswith(".yml"))
    assert f"--config.file={next(t for t in _mounts(prometheus) if t.endswith('.yml'))}" in (
        prometheus["command"])
    config = yaml.safe_load(config_path.read_text())
    worker = services["worker"]
    args = worker_args(worker, monkeypatch, worker["environment"])
    jobs = config["scrape_configs"]
    assert len(jobs) == 1
    job = jobs[0]
    assert job.get("metrics_path", "/metrics") == METRICS
    # DNS discovery: the service name resolves to every replica of `--scale worker=N`
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["worker"] and discovery["port"] == args.web_port
    # the workers' /metrics is closed only by a metrics token: then Prometheus needs it
    if args.metrics_token is not None or args.metrics_token_file is not None:
        assert "authorization" in job
    assert args.web_cert is None or job.get("scheme") == "https"


def test_grafana_reads_prometheus_and_loads_the_dashboard(services: dict[str, Any]) -> None:
    grafana, prometheus = services["grafana"], services["prometheus"]
    mounts = _mounts(grafana)
    provisioning = "/etc/grafana/provisioning"
    (source,) = yaml.safe_load((mounts[f"{provisioning}/datasources"] / "prometheus.yml"
                                ).read_text())["datasources"]
    port = str(prometheus["ports"][0]).rsplit(":", 1)[-1]
    assert source["type"] == "prometheus" and source["url"] == f"http://prometheus:{port}"
    (provider,) = yaml.safe_load((mounts[f"{provisioning}/dashboards"] / "segstream.yml"
                                  ).read_text())["providers"]
    dashboards = {t: p for t, p in mounts.items()
                  if Path(t).parent == Path(provider["options"]["path"])}
    assert [p.relative_to(ROOT) for p in dashboards.values()] == [
        Path("deploy/grafana/segstream.json")]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home in dashboards
    assert grafana["depends_on"] == ["prometheus"] and prometheus["depends_on"] == ["worker"]
