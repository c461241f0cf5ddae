"""What a failing test's report and the timeline tell a user (issue 15, "reports a user can read")."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pytest_pods import Client

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

STAMP = r"\d\d:\d\d:\d\d\.\d{3}"  # the local time of day a line was logged, as the sections show it

SHARED_SUITE = '''
    import time
    from pytest_pods import container

    box = container(image="busybox", network="none", scope="session",
                    command=["sh", "-c", "echo boot-line-1; echo boot-line-2; echo booted; exec sleep 600"],
                    wait="booted")

    def log_from_test(box, count, word):
        """Make the shared container log COUNT lines now, and wait until its log has them."""
        box.exec(["sh", "-c", f"for i in $(seq 1 {count}); do echo {word}-$i; done > /proc/1/fd/1"])
        deadline = time.monotonic() + 10
        while f"{word}-{count}\\n".encode() not in box.logs():
            assert time.monotonic() < deadline, box.logs()
            time.sleep(0.01)

    def test_first(box):
        log_from_test(box, 1, "first")

    def test_second_fails(box):
        log_from_test(box, COUNT, "second")
        assert False, "fails on purpose"
'''


def section(out: str, title_start: str) -> tuple[str, list[str]]:
    """The title and the lines of the report section whose title starts with ``title_start``."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        m = re.fullmatch(r"-+ (.*?) -+", line)
        if m and m.group(1).startswith(title_start):
            body = []
            for text in lines[i + 1:]:
                if re.match(r"^(-{3,}|_{3,}|={3,})", text):
                    break
                body.append(text)
            return m.group(1), body
    raise AssertionError(f"no section {title_start!r} in:\n{out}")


def test_a_shared_containers_section_shows_only_the_lines_since_the_test_started_with_times(inner: Inner) -> None:
    inner.pytester.makepyfile(test_shared=SHARED_SUITE.replace("COUNT", "60"))
    result, sid = inner.run("--tb=short")
    result.assert_outcomes(passed=1, failed=1)
    title, body = section(result.stdout.str(), "pods: box (pods-")
    assert title.endswith(") last 50 log lines since the test started (10 earlier ones cut; "
                          "--pods-logs=all shows the whole log)"), title
    assert body[0] != "" and body[-1] != ""
    assert body == [line for line in body if re.fullmatch(rf"{STAMP} second-\d+", line)], body
    assert [line.split()[1] for line in body] == [f"second-{i}" for i in range(11, 61)]
    assert inner.left(sid) == []


def test_the_whole_log_option_shows_what_the_container_logged_before_the_test(inner: Inner) -> None:
    inner.pytester.makepyfile(test_shared=SHARED_SUITE.replace("COUNT", "2"))
    result, sid = inner.run("--tb=short", "--pods-logs=all")
    result.assert_outcomes(passed=1, failed=1)
    title, body = section(result.stdout.str(), "pods: box (pods-")
    assert title.endswith(") 6 log lines of the whole log"), title
    assert [re.fullmatch(rf"{STAMP} (\S+)", line).group(1) for line in body] == [  # type: ignore[union-attr]
        "boot-line-1", "boot-line-2", "booted", "first-1", "second-1", "second-2"]
    assert inner.left(sid) == []


def test_the_log_option_is_read_from_the_environment_and_a_bad_value_is_a_usage_error(
        inner: Inner, monkeypatch: pytest.MonkeyPatch) -> None:
    inner.pytester.makepyfile(test_shared=SHARED_SUITE.replace("COUNT", "1"))
    monkeypatch.setenv("PODS_LOGS", "all")
    result, _ = inner.run("--tb=short")
    result.assert_outcomes(passed=1, failed=1)
    assert section(result.stdout.str(), "pods: box (pods-")[0].endswith("5 log lines of the whole log")
    result = inner.pytester.runpytest_inprocess(f"--pods-root={inner.root}", "-p", "no:cacheprovider",
                                                "--pods-logs=everything")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--pods-logs: 'everything' is not one of test, all" in result.stderr.str()


def test_a_failing_test_with_the_shipped_services_shows_no_boot_banner(inner: Inner) -> None:
    inner.pytester.makepyfile(test_services='''
        def test_postgres_fails(postgres):
            postgres.psql("select no_such_column")

        def test_redis_fails(redis):
            assert redis.cli("ping") == "not what redis says"
    ''')
    result, sid = inner.run("--tb=short", subprocess=True, timeout=900)
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    title, body = section(out, "pods: postgres (pods-")
    assert "since the test started (boot lines up to the ready line left out;" in title, title
    text = "\n".join(body)
    for banner in ("starting PostgreSQL", "listening on", "database system was shut down",
                   "ready to accept connections"):
        assert banner not in text, body
    # what the server said during the test is there, each line with its time
    assert any(re.fullmatch(rf'{STAMP} .*ERROR:  column "no_such_column" does not exist.*', line)
               for line in body), body
    title, body = section(out, "pods: redis (pods-")
    assert "since the test started (boot lines up to the ready line left out;" in title, title
    text = "\n".join(body)
    for banner in ("Redis is starting", "Redis version", "Server initialized", "Ready to accept connections"):
        assert banner not in text, body
    assert inner.left(sid) == []


def timeline(out: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "pods timeline (seconds)" in line)
    rows: list[str] = []
    for line in lines[start + 1:]:
        if re.match(r"^(-{3,}|={3,})", line) or (rows and not line.strip()):
            break
        if line.strip():
            rows.append(line)
    return rows


def assert_columns_line_up(rows: list[str], names: list[str]) -> None:
    """Every header name is a word of its own, and each row's cells end where their header ends."""
    header = rows[0]
    assert header.split() == names, header
    ends = {name: m.end() for name in names[names.index("build"):]
            for m in [re.search(rf"\b{name}\b", header)] if m}
    for row in rows[1:]:
        if row.startswith("... and"):
            continue
        for name, end in ends.items():
            assert re.fullmatch(r"\d+\.\d{3}|-", row[:end].split(" ")[-1]), (name, header, row)
            assert len(row) == end or row[end] == " ", (name, header, row)


def test_timeline_columns_are_separated_and_aligned(inner: Inner) -> None:
    inner.pytester.makepyfile(test_tl='''
        from pytest_pods import container

        a_fixture_with_a_long_name = container(image="busybox", command=["sleep", "60"], network="none")

        def test_one(a_fixture_with_a_long_name):
            pass
    ''')
    result, sid = inner.run()
    result.assert_outcomes(passed=1)
    rows = timeline(result.stdout.str())
    assert_columns_line_up(rows, ["fixture", "container", "build", "pull", "snapshot", "create", "start",
                                  "ready", "pool", "total"])
    assert rows[1].startswith("a_fixture_with_a_long_name  pods-"), rows
    assert inner.left(sid) == []


def test_timeline_under_xdist_has_the_rows_of_every_worker(inner: Inner) -> None:
    inner.pytester.makepyfile(test_xdist='''
        import os, pytest
        from pytest_pods import container

        box = container(image="busybox", command=["sleep", "60"], network="none")

        @pytest.mark.parametrize("n", range(6))
        def test_box(box, n):
            with open(os.path.join(os.path.dirname(__file__), "workers.txt"), "a") as f:
                f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    ''')
    result, sid = inner.run("-n", "2", subprocess=True)
    result.assert_outcomes(passed=6)
    ran_on = (inner.pytester.path / "workers.txt").read_text().split()
    rows = timeline(result.stdout.str())
    assert_columns_line_up(rows, ["fixture", "worker", "container", "build", "pull", "snapshot", "create",
                                  "start", "ready", "pool", "total"])
    assert sorted(row.split()[1] for row in rows[1:]) == sorted(ran_on), rows  # a row per container
    assert set(ran_on) == {"gw0", "gw1"}, ran_on
    assert inner.left(sid) == []


def test_timeline_says_reused_only_for_a_container_picked_up_from_an_earlier_run(
        inner: Inner, client: Client) -> None:
    marker = inner.pytester.path.name
    inner.pytester.makepyfile(test_reuse=f'''
        from pytest_pods import container

        kept = container(image="busybox", command=["sleep", "600"], network="none", scope="session",
                         environment={{"MARK": "{marker}"}})

        def test_it(kept):
            pass
    ''')
    try:
        first = [row for row in timeline(inner.run("--pods-reuse")[0].stdout.str())[1:] if row.startswith("kept ")]
        second = [row for row in timeline(inner.run("--pods-reuse")[0].stdout.str())[1:] if row.startswith("kept ")]
        assert len(first) == 1 and "reused" not in first[0], first  # made by this run
        assert len(second) == 1 and second[0].endswith("(reused)"), second
    finally:
        for st in client.runtime.list(all=True):
            if (st.get("labels") or {}).get("pytest-pods.fixture") == "kept" and \
                    marker in json.dumps(client.containers.get(st["id"]).inspect()["Config"]["Env"]):
                client.runtime.remove(st["id"], force=True)
