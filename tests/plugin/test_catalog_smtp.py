"""The captured-mail service of the catalogue (issue 17): pytest-pods' SMTP server on Debian 12's
aiosmtpd, mail sent with smtplib and read back parsed, a server per test or one cleared before
each test, reached by name from another container, pooled, leaving nothing."""

from __future__ import annotations

from typing import Any

import pytest

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

TESTS = '''
import smtplib
from email.message import EmailMessage

import pytest
from pytest_pods import network
from pytest_pods.errors import PodsError
from pytest_pods.plugin.catalog.smtp import smtp_container

net = network(scope="module")
named = smtp_container(network=net)
cleared = smtp_container(isolation="clear")
pooled = smtp_container(pool=1)
locked = smtp_container(environment={"MP_SMTP_AUTH": "ann:secret"})

def send(server, to, subject, body="hello", bcc=(), html=None, attach=None):
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, "App <app@example.com>", ", ".join(to)
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    if attach:
        msg.add_attachment(attach, maintype="application", subtype="pdf", filename="invoice.pdf")
    with smtplib.SMTP(server.host, server.port, timeout=10) as s:
        s.send_message(msg, to_addrs=[*to, *bcc])

def test_mail_sent_with_smtplib_comes_back_parsed(smtp):
    assert smtp.messages() == []
    send(smtp, ["Ann <ann@example.org>"], "Welcome, Ann \\u00e9", body="Hi Ann,\\nwelcome.\\n",
         bcc=["audit@example.net"], html="<p>Hi Ann</p>", attach=b"%PDF-1.4")
    (mail,) = smtp.messages()
    assert mail.subject == "Welcome, Ann \\u00e9"
    assert mail.sender == "App <app@example.com>" and mail.mail_from == "app@example.com"
    assert mail.to == ("Ann <ann@example.org>",)
    assert mail.recipients == ("ann@example.org", "audit@example.net")  # the envelope: Bcc too
    assert mail.body == "Hi Ann,\\nwelcome.\\n" and mail.html == "<p>Hi Ann</p>\\n"
    assert mail.headers["Subject"] == mail.subject and mail.header("from") == mail.sender
    assert mail.attachments == ({"filename": "invoice.pdf", "content_type": "application/pdf", "size": 8},)
    assert mail.message()["To"] == "Ann <ann@example.org>"
    assert smtp.message(mail.id) == mail
    assert [m.id for m in smtp.messages(to="AUDIT@example.net")] == [mail.id]
    assert [m.id for m in smtp.messages(to="@example.org")] == [mail.id]
    assert smtp.messages(to="bob@example.org") == []
    assert smtp.clear(to="bob@example.org") == 0 and smtp.clear() == 1 and smtp.messages() == []

def test_login_is_accepted_and_bad_requests_are_named(smtp):
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as s:
        assert s.login("any", "thing")[0] == 235
        s.sendmail("a@example.com", ["b@example.com"], b"Subject: x\\r\\n\\r\\nbody\\r\\n")
    assert len(smtp.wait_for(1, to="b@example.com", timeout=5)) == 1
    with pytest.raises(PodsError, match="No such message: 999"):
        smtp.message("999")
    with pytest.raises(ValueError, match="give an address"):
        smtp.messages(to="nobody")
    with pytest.raises(TimeoutError, match="smtp wait for 2 message"):
        smtp.wait_for(2, timeout=0.2)

def test_mp_smtp_auth_lets_only_its_users_in(locked):
    with smtplib.SMTP(locked.host, locked.port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("ann", "wrong")
        assert s.login("ann", "secret")[0] == 235

@pytest.mark.parametrize("n", [1, 2])
def test_each_test_an_empty_mailbox(cleared, n):
    assert cleared.messages() == []  # the other test's mail is gone
    send(cleared, ["same@example.org"], f"test {n}")
    assert [m.subject for m in cleared.messages(to="same@example.org")] == [f"test {n}"]

def test_reached_by_name_from_another_container(named, pods, net):
    box = pods.run("busybox", ["sleep", "60"], network=net)
    script = ("printf 'EHLO box\\\\r\\\\nMAIL FROM:<box@example.com>\\\\r\\\\nRCPT TO:<ann@example.org>\\\\r\\\\n"
              "DATA\\\\r\\\\nSubject: from the box\\\\r\\\\n\\\\r\\\\nhi\\\\r\\\\n.\\\\r\\\\nQUIT\\\\r\\\\n'"
              f" | nc -w 5 {named.network_host} {named.network_port}")
    res = box.exec(["sh", "-c", script])
    assert b"250 Message accepted" in res.output, res
    assert named.network_url == f"smtp://{named.name}:1025"
    assert [m.subject for m in named.wait_for(1)] == ["from the box"]

def test_pooled(pooled):
    send(pooled, ["x@example.org"], "pooled")
    assert len(pooled.messages()) == 1
'''


def test_smtp_mail_read_back_isolation_pool_and_network(inner: Inner) -> None:
    if inner.kind != "local":
        pytest.skip("one engine is enough for the server's own behaviour (the image build is the slow part)")
    inner.pytester.makepyfile(test_mail=TESTS)
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=7)
    assert inner.left(sid) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"isolation": "database"}, "isolation='database': use one of container, clear"),
    ({"isolation": "clear", "pool": 2}, r"pool=...\) needs isolation='container'"),
    ({"warm": print}, "keeps its messages in memory only"),
])
def test_smtp_container_refuses_what_it_cannot_do_by_name(kwargs: dict[str, Any], message: str) -> None:
    from pytest_pods.plugin.catalog.smtp import smtp_container

    with pytest.raises(ValueError, match=message):
        smtp_container(**kwargs)
