"""The multi-stage example: a C program compiled in a Debian stage runs in a busybox image."""

from __future__ import annotations

from pathlib import Path

from pytest_pods import Client

HERE = Path(__file__).parent


def test_multi_stage_c_program_runs_in_busybox(client: Client) -> None:
    lines: list[str] = []
    image = client.images.build(HERE / "hello-c", tag="examples/hello-c:latest", progress=lines.append)
    assert image.run_config["Entrypoint"] == ["/usr/local/bin/hello"]
    assert len(image.layers) == len(client.images.get("busybox").layers) + 1  # only the binary on top
    result = client.containers.run("examples/hello-c:latest", ["a", "b"], remove=True, network="none")
    assert result.output == b"hello from C, built by pytest-pods (2 args)\n"
