"""The ES2+ client against the SM-DP+ emulator over real loopback HTTP (and mutual TLS)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from carryover.adapters.es2plus_client import Es2PlusClient
from carryover.adapters.smdp_device import SimulatedDevice
from carryover.adapters.smdp_emulator import create_emulator_app
from carryover.adapters.smdp_store import Fault
from carryover.domain.esim.states import ProfileState
from carryover.domain.esim.status import FunctionFailed
from carryover.services.esim.ports import TransportFailure
from tests.esim_support import EID_A, EID_B, emulator, iccid, records
from tests.loopback import serving

PROFILES = records(4)
FIRST, SECOND = PROFILES[0].iccid, PROFILES[1].iccid


@pytest.fixture
def smdp():
    with emulator(PROFILES) as (store, url):
        yield store, url


@pytest.fixture
def client(smdp):
    _, url = smdp
    waits: list[float] = []
    with Es2PlusClient(url, retries=2, backoff=0.25, sleep=waits.append) as es2:
        es2.waits = waits
        yield es2


def test_order_and_confirm(smdp, client):
    store, _ = smdp
    assert client.download_order(iccid=FIRST, eid=EID_A) == FIRST
    assert store.profiles[FIRST].state is ProfileState.LINKED
    confirmed = client.confirm_order(iccid=FIRST, release=True, eid=EID_A)
    assert confirmed.smdp_address == "smdp.localhost"
    assert confirmed.eid == EID_A
    assert store.profiles[FIRST].state is ProfileState.RELEASED
    assert store.profiles[FIRST].matching_id == confirmed.matching_id


def test_download_order_by_profile_type_and_release_later(smdp, client):
    store, _ = smdp
    picked = client.download_order(profile_type="consumer")
    assert store.profiles[picked].state is ProfileState.ALLOCATED
    client.confirm_order(iccid=picked, release=False)
    assert store.profiles[picked].state is ProfileState.CONFIRMED
    client.release_profile(iccid=picked)
    assert store.profiles[picked].state is ProfileState.RELEASED


def test_every_call_has_its_own_identifier_and_the_protocol_header(smdp, client):
    store, url = smdp
    client.download_order(iccid=FIRST)
    client.confirm_order(iccid=FIRST, release=True)
    ids = [call_id for _, call_id in store.calls]
    assert len(ids) == len(set(ids)) == 2
    # The emulator refuses a request without X-Admin-Protocol, as SM-DP+s do.
    bare = httpx.post(url + "/gsma/rsp2/es2plus/releaseProfile",
                      json={"header": {"functionCallIdentifier": "x"}, "iccid": FIRST})
    status = bare.json()["header"]["functionExecutionStatus"]
    assert status["status"] == "Failed" and "X-Admin-Protocol" in status["statusCodeData"][
        "message"]


def test_unknown_iccid(smdp, client):
    unknown = iccid(999)
    with pytest.raises(FunctionFailed) as caught:
        client.download_order(iccid=unknown, eid=EID_A)
    assert caught.value.codes == ("8.2.1", "3.9")
    assert unknown in str(caught.value)
    assert len(smdp[0].calls) == 1  # a Failed answer is not retried


def test_order_already_confirmed(client):
    client.download_order(iccid=FIRST, eid=EID_A)
    client.confirm_order(iccid=FIRST, release=True)
    with pytest.raises(FunctionFailed) as caught:
        client.confirm_order(iccid=FIRST, release=True)
    assert caught.value.codes == ("8.2.1", "3.5")
    assert "invalid transition" in str(caught.value)


def test_profile_linked_to_another_eid(client):
    client.download_order(iccid=FIRST, eid=EID_A)
    with pytest.raises(FunctionFailed) as caught:
        client.confirm_order(iccid=FIRST, release=True, eid=EID_B)
    assert caught.value.codes == ("8.1.1", "3.10")


def test_cancel_before_download_and_refused_after_install(smdp, client):
    store, url = smdp
    client.download_order(iccid=SECOND, eid=EID_A)
    client.cancel_order(iccid=SECOND, final_status="Available")
    assert store.profiles[SECOND].state is ProfileState.AVAILABLE

    client.download_order(iccid=FIRST, eid=EID_A)
    confirmed = client.confirm_order(iccid=FIRST, release=True)
    with SimulatedDevice(url, EID_A) as phone:
        installed = phone.download(f"1${confirmed.smdp_address}${confirmed.matching_id}")
    assert installed["state"] == "installed"
    with pytest.raises(FunctionFailed) as caught:
        client.cancel_order(iccid=FIRST, final_status="Available", eid=EID_A)
    assert caught.value.codes == ("8.2.1", "3.3")
    assert store.profiles[FIRST].state is ProfileState.INSTALLED


def test_a_lost_answer_is_retried_with_the_same_call_identifier(smdp, client):
    store, _ = smdp
    client.download_order(iccid=FIRST, eid=EID_A)
    # The SM-DP+ confirms the order, then the answer is lost (HTTP 503).
    store.faults.append(Fault("confirmOrder", times=1, after=True))
    confirmed = client.confirm_order(iccid=FIRST, release=True)
    confirm_calls = [call_id for function, call_id in store.calls if function == "confirmOrder"]
    assert len(confirm_calls) == 2 and confirm_calls[0] == confirm_calls[1]
    # The retry got the first answer back; the order was confirmed once, not refused.
    assert confirmed.matching_id == store.profiles[FIRST].matching_id
    assert sum("confirmOrder" in line for line in store.profiles[FIRST].history) == 1
    assert client.waits == [0.25]


def test_a_refused_connection_before_execution_is_retried(smdp, client):
    store, _ = smdp
    store.faults.append(Fault("downloadOrder", times=2, after=False, status=502))
    assert client.download_order(iccid=FIRST) == FIRST
    calls = [call_id for function, call_id in store.calls if function == "downloadOrder"]
    assert len(calls) == 3 and len(set(calls)) == 1
    assert client.waits == [0.25, 0.5]  # exponential backoff


def test_retries_run_out(smdp, client):
    store, _ = smdp
    store.faults.append(Fault("releaseProfile", times=10, after=False))
    with pytest.raises(TransportFailure, match="HTTP 503 after 3 attempts"):
        client.release_profile(iccid=FIRST)
    assert len(store.calls) == 3


def test_nobody_listening():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Es2PlusClient(f"http://127.0.0.1:{port}", retries=1, sleep=lambda s: None) as es2, \
            pytest.raises(TransportFailure, match="ConnectError"):
        es2.download_order(iccid=FIRST)


def test_a_server_that_never_answers_times_out():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections (the kernel does) and never says a word
        port = silent.getsockname()[1]
        waits: list[float] = []
        with Es2PlusClient(f"http://127.0.0.1:{port}", timeout=0.2, retries=1,
                           sleep=waits.append) as es2, \
                pytest.raises(TransportFailure, match=r"ReadTimeout: .* after 2 attempts"):
            es2.release_profile(iccid=FIRST)
        assert waits == [0.5]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=tmp_path)
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=tmp_path)
        extra = ["-extfile", "san.ext"] if name == "server" else []
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "1", "-out", f"{name}.pem", *extra, cwd=tmp_path)
    return tmp_path


def test_mutual_tls(pki):
    from carryover.adapters.smdp_store import SmdpStore

    store = SmdpStore()
    store.add_profile(FIRST, PROFILES[0].imsi, "consumer")
    tls = {"ssl_certfile": str(pki / "server.pem"), "ssl_keyfile": str(pki / "server.key"),
           "ssl_ca_certs": str(pki / "ca.pem"), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    with serving(create_emulator_app(store), **tls) as url:
        assert url.startswith("https://")
        with Es2PlusClient(url, client_cert=str(pki / "client.pem"),
                           client_key=str(pki / "client.key"), ca_file=str(pki / "ca.pem"),
                           retries=0) as es2:
            assert es2.download_order(iccid=FIRST) == FIRST
        # Without a client certificate the handshake fails, and nothing is executed.
        with Es2PlusClient(url, ca_file=str(pki / "ca.pem"), retries=0) as anonymous, \
                pytest.raises(TransportFailure):
            anonymous.release_profile(iccid=FIRST)
        # Nor does the client talk to a server whose certificate its CA did not sign.
        with Es2PlusClient(url, retries=0) as trusting_the_system, \
                pytest.raises(TransportFailure):
            trusting_the_system.release_profile(iccid=FIRST)
    assert [function for function, _ in store.calls] == ["downloadOrder"]
