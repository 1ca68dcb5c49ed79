"""The README shows what the code does: the feature table is the catalog's."""

from __future__ import annotations

from pathlib import Path

import pytest

from segments.catalog import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_feature_table_is_generated_from_the_catalog() -> None:
    assert markdown_table().strip() in README.read_text()


def security_section() -> str:
    text = README.read_text()
    return text[text.index("## Security\n"):]


def test_the_readme_acls_are_the_ones_the_code_needs() -> None:
    from streams.client.acls import WORKER, WORKER_EXACTLY_ONCE, kafka_acls, markdown_table
    from streams.settings import Settings

    section = security_section()
    assert markdown_table(Settings()) in section
    assert "\n".join(kafka_acls(WORKER, Settings(), "User:segstream")) in section
    # exactly-once: the worker's lines and one more, its transactional ids
    extra = kafka_acls(WORKER_EXACTLY_ONCE, Settings(), "User:segstream")
    assert extra[:-1] == kafka_acls(WORKER, Settings(), "User:segstream")
    assert f"```sh\n{extra[-1]}\n```" in section


def test_each_client_properties_example_in_the_readme_loads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re
    import subprocess

    from streams.kafka_config import load_kafka_config

    tls = tmp_path / "tls"
    subprocess.run(["bash", str(README.parent / "scripts" / "kafka-tls.sh"), str(tls)],
                   check=True)
    key, cert = (tls / "client.key").read_bytes(), (tls / "client.pem").read_bytes()
    # the files the examples name, in the directory they run from
    files = {"ca.pem": (tls / "ca.pem").read_bytes(), "client.pem": key + cert,
             "service.cert": cert, "service.key": key}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    monkeypatch.chdir(tmp_path)
    examples = re.findall(r"```properties\n(.*?)```", security_section(), re.S)
    assert len(examples) == 6
    for n, example in enumerate(examples):
        for variable in re.findall(r"\$\{env:(\w+)\}", example):
            monkeypatch.setenv(variable, "a-secret")
        path = tmp_path / f"example-{n}.properties"
        path.write_text(example)
        config = load_kafka_config(path)
        assert config.protocol in ("SSL", "SASL_SSL") and config.bootstrap, example
        assert config.ssl_context is not None
