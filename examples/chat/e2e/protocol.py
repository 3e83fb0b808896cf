"""Protocol test of a running `wskit-chat` (SPEC §3 and §4) with an independent client.

The client is the Python `websockets` library (not wskit, not tungstenite) plus raw `http.client`
for the plain-HTTP cases; tokens come from `GET /token?user=NAME`, and the JWTs this test forges
(expired, wrong secret, `alg: none`) are built here with `hmac`, not with the server's code.

    .venv/bin/python examples/chat/e2e/protocol.py http://127.0.0.1:3000 \
        [--allowed-origin http://allowed.example] [--jwt-secret S] [--server-pid PID] [--server-log F]

It starts nothing itself. `--allowed-origin` names the one origin the server was started with
(`wskit-chat --allowed-origin`), enabling the 403 checks; `--jwt-secret` is the server's secret
(default: the dev secret); `--server-pid` enables the last check, which sends the server SIGINT
and expects close 1001 on open connections (the caller then reaps it); `--server-log` is checked
for leaked tokens at the end. Prints one line per check and ends with `N passed, N failed`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import os
import signal
import sys
import time
import traceback
import urllib.parse
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

DEV_SECRET = "wskit-dev-secret-do-not-use-in-production"
CHAT_MAX_PAYLOAD = 64 * 1024
TIMEOUT = 5.0

ARGS: argparse.Namespace
HOST = ""
PORT = 0
TOKENS_SEEN: list[str] = []
CHECKS: list[tuple[str, Callable[[], Awaitable[None]]]] = []


def check(name: str):
    """Registers a check; checks run in declaration order."""

    def register(fn: Callable[[], Awaitable[None]]):
        CHECKS.append((name, fn))
        return fn

    return register


# ---------------------------------------------------------------------------------------------
# Helpers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_jwt(claims: dict, secret: str, alg: str = "HS256") -> str:
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    if alg == "none":
        return f"{header}.{payload}."
    sig = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(sig)}"


def http_get(path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, PORT, timeout=TIMEOUT)
    try:
        conn.request("GET", path, headers=headers or {})
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def token(user: str) -> str:
    status, _, body = http_get(f"/token?user={urllib.parse.quote(user)}")
    assert status == 200, f"/token answered {status}"
    tok = json.loads(body)["token"]
    TOKENS_SEEN.append(tok)
    return tok


def ws_url(path: str) -> str:
    return f"ws://{HOST}:{PORT}{path}"


async def open_ws(
    path: str,
    *,
    tok: str | None = None,
    via: str = "query",
    origin: str | None = None,
    subprotocols: list[str] | None = None,
    compression: str | None = None,
) -> ClientConnection:
    headers = {}
    if tok is not None and via == "query":
        path = f"{path}?token={urllib.parse.quote(tok)}"
    elif tok is not None and via == "bearer":
        headers["Authorization"] = f"Bearer {tok}"
    elif tok is not None and via == "subprotocol":
        subprotocols = ["wskit", f"base64url.bearer.{b64url(tok.encode())}"]
    return await connect(
        ws_url(path),
        additional_headers=headers,
        origin=origin,
        subprotocols=subprotocols,
        compression=compression,
        proxy=None,
        open_timeout=TIMEOUT,
        max_size=None,
    )


async def user(name: str, via: str = "query") -> ClientConnection:
    return await open_ws("/ws/chat", tok=token(name), via=via)


async def refused(path: str, **kw) -> int:
    """Opens `path` expecting the upgrade to be refused; returns the HTTP status."""
    try:
        ws = await open_ws(path, **kw)
    except InvalidStatus as e:
        return e.response.status_code
    await ws.close()
    raise AssertionError(f"{path}: the upgrade was accepted")


async def recv_json(ws: ClientConnection) -> dict:
    raw = await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert isinstance(raw, str), f"expected a text frame, got {raw!r:.80}"
    msg = json.loads(raw)
    assert isinstance(msg, dict), msg
    return msg


async def send_json(ws: ClientConnection, msg: dict) -> None:
    await ws.send(json.dumps(msg))


async def sync(ws: ClientConnection) -> None:
    """A round trip on `ws`: its next message must be the reply to this probe.

    The server handles one connection's messages in order and a publish reaches the other
    subscribers' queues while it is handled, so anything queued for `ws` before the probe
    (a stray echo of its own message, a message it should not get) arrives first and fails here.
    """
    await ws.send('{"type":"sync-probe"}')
    msg = await recv_json(ws)
    assert msg.get("code") == "unknown_type", f"expected only the probe's reply, got {msg}"


async def expect_close(ws: ClientConnection, code: int) -> None:
    try:
        while True:
            msg = await asyncio.wait_for(ws.recv(), TIMEOUT)
            raise AssertionError(f"expected close {code}, got a message {msg!r:.80}")
    except ConnectionClosed as e:
        got = e.rcvd.code if e.rcvd else None
        assert got == code, f"expected close {code}, got {got} ({e})"


def assert_recent(ms: object) -> None:
    assert isinstance(ms, int), f"timestamp {ms!r} is not an integer"
    assert abs(ms - time.time() * 1000) < 60_000, f"timestamp {ms} is not now"


def assert_error(msg: dict, code: str, path: list | None = None) -> None:
    assert msg.get("type") == "error" and msg.get("code") == code, f"expected {code}: {msg}"
    assert isinstance(msg.get("message"), str) and msg["message"], msg
    if path is not None:
        paths = [i["path"] for i in msg.get("issues") or []]
        assert path in paths, f"expected an issue at {path}, got {paths}"
        for i in msg["issues"]:
            assert set(i) == {"path", "code", "message"}, i


async def join(room: str, *users: ClientConnection) -> None:
    """Joins `users` to `room` one by one, reading the room_joined each earlier one gets."""
    for n, u in enumerate(users):
        await send_json(u, {"type": "join_room", "roomId": room})
        for earlier in users[:n]:
            msg = await recv_json(earlier)
            assert msg["type"] == "room_joined" and msg["roomId"] == room, msg
        await sync(u)


# ---------------------------------------------------------------------------------------------
# HTTP side (§3, §4)


@check("GET / serves the page and GET /token mints a verifiable HS256 JWT")
async def _page_and_token() -> None:
    status, headers, body = http_get("/")
    assert status == 200 and b'id="messages"' in body, status
    assert headers["content-type"].startswith("text/html"), headers
    tok = token("Ada L")
    header, payload, sig = tok.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    claims = json.loads(base64.urlsafe_b64decode(pad(payload)))
    assert claims["sub"] == "Ada L" and claims["exp"] > time.time(), claims
    assert json.loads(base64.urlsafe_b64decode(pad(header)))["alg"] == "HS256"
    mac = hmac.new(ARGS.jwt_secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    assert hmac.compare_digest(b64url(mac.digest()), sig), "signature does not verify"
    assert http_get("/token?user=")[0] == 400


@check("unknown path: 404 for an upgrade and for a plain GET")
async def _unknown_path() -> None:
    assert await refused("/ws/nope") == 404
    assert http_get("/nope")[0] == 404


@check("plain GET on a WebSocket path: 426, before any auth check")
async def _plain_get() -> None:
    for path in ("/ws/chat", "/ws/echo", "/ws/chat?token=garbage"):
        status, headers, _ = http_get(path)
        assert status == 426, f"{path}: {status}"
        assert headers.get("upgrade", "").lower() == "websocket", headers


@check("/ws/chat without a token or with a bad one: 401, no upgrade")
async def _bad_tokens() -> None:
    now = int(time.time())
    good = {"sub": "mallory", "email": "m@example.com", "exp": now + 600}
    bad = {
        "no token": None,
        "garbage": "not-a-jwt",
        "wrong secret": forge_jwt(good, "some-other-secret"),
        "expired": forge_jwt({**good, "exp": now - 10}, ARGS.jwt_secret),
        "alg none": forge_jwt(good, ARGS.jwt_secret, alg="none"),
        "no sub": forge_jwt({"email": "m@example.com", "exp": now + 600}, ARGS.jwt_secret),
    }
    for what, tok in bad.items():
        for via in ("query", "bearer", "subprotocol") if tok else ("query",):
            status = await refused("/ws/chat", tok=tok, via=via)
            assert status == 401, f"{what} via {via}: {status}"
    # The same claims signed with the right secret are accepted: the 401s above are the token's.
    ws = await open_ws("/ws/chat", tok=forge_jwt(good, ARGS.jwt_secret))
    await ws.close()


@check("Origin allow-list: listed and absent Origin pass, any other gets 403")
async def _origin() -> None:
    if not ARGS.allowed_origin:
        raise Skip("the server was started without --allowed-origin")
    tok = token("olive")
    for path, kw in (("/ws/echo", {}), ("/ws/chat", {"tok": tok})):
        ws = await open_ws(path, origin=ARGS.allowed_origin, **kw)
        await ws.close()
        ws = await open_ws(path, **kw)  # no Origin: a non-browser client
        await ws.close()
        for bad in ("http://evil.example", "null", ARGS.allowed_origin + ".evil.example"):
            status = await refused(path, origin=bad, **kw)
            assert status == 403, f"{path} Origin {bad}: {status}"


# ---------------------------------------------------------------------------------------------
# /ws/echo


@check("/ws/echo: no auth; echo comes back as {type: message, content, timestamp}")
async def _echo() -> None:
    async with await open_ws("/ws/echo") as ws:
        assert ws.subprotocol is None
        for text in ("hello", "héllo 👋", ""):
            await send_json(ws, {"type": "echo", "message": text})
            msg = await recv_json(ws)
            assert set(msg) == {"type", "content", "timestamp"}, msg
            assert msg["type"] == "message" and msg["content"] == text, msg
            assert_recent(msg["timestamp"])


@check("/ws/echo: permessage-deflate offered is declined, plain frames work")
async def _echo_no_compression() -> None:
    async with await open_ws("/ws/echo", compression="deflate") as ws:
        assert "sec-websocket-extensions" not in {k.lower() for k in ws.response.headers}
        await send_json(ws, {"type": "echo", "message": "x" * 5000})
        assert (await recv_json(ws))["content"] == "x" * 5000


@check("/ws/echo: bad input gets an error envelope and the connection stays open")
async def _echo_errors() -> None:
    async with await open_ws("/ws/echo") as ws:
        await ws.send("nope")
        assert_error(await recv_json(ws), "invalid_json")
        await send_json(ws, {"type": "echo"})
        assert_error(await recv_json(ws), "validation_failed", ["message"])
        await send_json(ws, {"type": "echo", "message": "still open"})
        assert (await recv_json(ws))["content"] == "still open"


# ---------------------------------------------------------------------------------------------
# /ws/chat: token transports


@check("token by query, by Bearer header and by subprotocol (server selects `wskit`)")
async def _token_transports() -> None:
    room = "transports"
    watcher = await user("watcher")
    await join(room, watcher)
    for via in ("query", "bearer", "subprotocol"):
        name = f"user-{via}"
        ws = await user(name, via)
        try:
            if via == "subprotocol":
                assert ws.subprotocol == "wskit", ws.subprotocol
                proto = ws.response.headers.get_all("Sec-WebSocket-Protocol")
                assert proto == ["wskit"], f"the token must not be echoed: {proto}"
            else:
                assert ws.subprotocol is None, ws.subprotocol
            await send_json(ws, {"type": "join_room", "roomId": room})
            msg = await recv_json(watcher)
            assert msg["type"] == "room_joined" and msg["userId"] == name, msg
            assert msg["userEmail"] == f"{name}@example.com", msg
        finally:
            await ws.close()
        msg = await recv_json(watcher)
        assert msg["type"] == "room_left" and msg["userId"] == name, msg
    await watcher.close()


@check("a subprotocol offer without the token subprotocol is not taken as auth")
async def _subprotocol_without_token() -> None:
    assert await refused("/ws/chat", subprotocols=["wskit"]) == 401


# ---------------------------------------------------------------------------------------------
# /ws/chat: rooms


@check("join_room: room_joined {roomId, userId, userEmail, timestamp} to the others only")
async def _join() -> None:
    alice, bob = await user("alice"), await user("bob")
    await send_json(alice, {"type": "join_room", "roomId": "r-join"})
    await sync(alice)
    await send_json(bob, {"type": "join_room", "roomId": "r-join"})
    msg = await recv_json(alice)
    assert set(msg) == {"type", "roomId", "userId", "userEmail", "timestamp"}, msg
    assert (msg["type"], msg["roomId"], msg["userId"], msg["userEmail"]) == (
        "room_joined",
        "r-join",
        "bob",
        "bob@example.com",
    ), msg
    assert_recent(msg["timestamp"])
    await sync(bob)  # bob does not get his own room_joined
    await alice.close()
    await bob.close()


@check("chat_message: published to the room's others, not to the sender or other rooms")
async def _chat_message() -> None:
    alice, bob, carol, dave = [await user(n) for n in ("alice", "bob", "carol", "dave")]
    await join("r-msg", alice, bob, carol)
    await join("r-elsewhere", dave)
    text = "héllo, wörld 👋"
    await send_json(alice, {"type": "chat_message", "roomId": "r-msg", "message": text})
    for ws in (bob, carol):
        msg = await recv_json(ws)
        assert set(msg) == {"type", "roomId", "userId", "userEmail", "message", "timestamp"}, msg
        assert (msg["type"], msg["roomId"], msg["userId"], msg["userEmail"], msg["message"]) == (
            "message",
            "r-msg",
            "alice",
            "alice@example.com",
            text,
        ), msg
        assert_recent(msg["timestamp"])
    await sync(alice)
    await sync(dave)
    # Order: one sender's messages arrive in the order sent.
    for i in range(20):
        await send_json(alice, {"type": "chat_message", "roomId": "r-msg", "message": str(i)})
    for ws in (bob, carol):
        got = [(await recv_json(ws))["message"] for _ in range(20)]
        assert got == [str(i) for i in range(20)], got
    for ws in (alice, bob, carol, dave):
        await ws.close()


@check("typing: {type: typing, roomId, userId, isTyping} to the others")
async def _typing() -> None:
    alice, bob = await user("alice"), await user("bob")
    await join("r-typing", alice, bob)
    for flag in (True, False):
        await send_json(bob, {"type": "typing", "roomId": "r-typing", "isTyping": flag})
        msg = await recv_json(alice)
        assert msg == {"type": "typing", "roomId": "r-typing", "userId": "bob", "isTyping": flag}, msg
    await sync(bob)
    await alice.close()
    await bob.close()


@check("leave_room: room_left {roomId, userId, timestamp} to the others; no more messages")
async def _leave() -> None:
    alice, bob = await user("alice"), await user("bob")
    await join("r-leave", alice, bob)
    await send_json(bob, {"type": "leave_room", "roomId": "r-leave"})
    msg = await recv_json(alice)
    assert set(msg) == {"type", "roomId", "userId", "timestamp"}, msg
    assert (msg["type"], msg["roomId"], msg["userId"]) == ("room_left", "r-leave", "bob"), msg
    assert_recent(msg["timestamp"])
    await sync(bob)
    await send_json(alice, {"type": "chat_message", "roomId": "r-leave", "message": "gone?"})
    await sync(alice)
    await sync(bob)  # bob is no longer subscribed
    await alice.close()
    await bob.close()


@check("closing the connection: room_left to the others for every joined room")
async def _close_leaves_all() -> None:
    alice, bob, carol = await user("alice"), await user("bob"), await user("carol")
    await join("r-close-1", bob, alice)
    await join("r-close-2", carol, alice)
    await join("r-close-3", alice)
    await send_json(alice, {"type": "leave_room", "roomId": "r-close-3"})
    await sync(alice)
    await alice.close()
    for ws, room in ((bob, "r-close-1"), (carol, "r-close-2")):
        msg = await recv_json(ws)
        assert (msg["type"], msg["roomId"], msg["userId"]) == ("room_left", room, "alice"), msg
        await sync(ws)  # exactly one room_left per room, none for the room she had left
    await bob.close()
    await carol.close()


# ---------------------------------------------------------------------------------------------
# /ws/chat: errors (§4)


@check("invalid_json and unknown_type: error to the sender, connection stays open")
async def _envelope_errors() -> None:
    alice = await user("alice")
    for raw in ("nope", "[1,2]", '"str"', "42", '{"type":"join_room",'):
        await alice.send(raw)
        assert_error(await recv_json(alice), "invalid_json")
    for msg in ({}, {"type": "dance"}, {"type": 5, "roomId": "x"}, {"roomId": "x"}):
        await send_json(alice, msg)
        assert_error(await recv_json(alice), "unknown_type")
    await join("r-after-errors", alice)
    await alice.close()


@check("validation_failed: issues with wire-name paths (e.g. [\"roomId\"]), handler not called")
async def _validation() -> None:
    alice, bob = await user("alice"), await user("bob")
    await join("r-valid", bob)
    cases = [
        ({"type": "join_room"}, ["roomId"]),
        ({"type": "join_room", "roomId": ""}, ["roomId"]),
        ({"type": "join_room", "roomId": "x" * 51}, ["roomId"]),
        ({"type": "join_room", "roomId": 5}, ["roomId"]),
        ({"type": "leave_room", "roomId": None}, ["roomId"]),
        ({"type": "chat_message", "roomId": "r-valid"}, ["message"]),
        ({"type": "chat_message", "roomId": "r-valid", "message": ""}, ["message"]),
        ({"type": "chat_message", "roomId": "r-valid", "message": "é" * 1001}, ["message"]),
        ({"type": "typing", "roomId": "r-valid", "isTyping": "yes"}, ["isTyping"]),
    ]
    for msg, path in cases:
        await send_json(alice, msg)
        assert_error(await recv_json(alice), "validation_failed", path)
    await sync(bob)  # no handler ran: nothing was published to the room
    # Limits count code points, not bytes: 1000 four-byte emoji and a 50-emoji room are fine.
    emoji_room = "🦀" * 50
    await join(emoji_room, alice, bob)
    await send_json(alice, {"type": "chat_message", "roomId": emoji_room, "message": "🦀" * 1000})
    assert (await recv_json(bob))["message"] == "🦀" * 1000
    await sync(alice)
    await alice.close()
    await bob.close()


@check("message size: exactly 64 KiB is handled, one byte more closes with 1009")
async def _too_big() -> None:
    alice = await user("alice")
    base = json.dumps({"type": "join_room", "roomId": "r-big"})
    await alice.send(base + " " * (CHAT_MAX_PAYLOAD - len(base)))  # padding is valid JSON
    await sync(alice)
    await alice.send(base + " " * (CHAT_MAX_PAYLOAD + 1 - len(base)))
    await expect_close(alice, 1009)


@check("a binary message closes with 1003 (no binary handler)")
async def _binary() -> None:
    for path, tok in (("/ws/chat", token("alice")), ("/ws/echo", None)):
        ws = await open_ws(path, tok=tok)
        await ws.send(b'{"type":"echo","message":"bin"}')
        await expect_close(ws, 1003)


@check("tokens never appear in the server's log")
async def _no_tokens_in_log() -> None:
    if not ARGS.server_log:
        raise Skip("no --server-log")
    with open(ARGS.server_log, encoding="utf-8", errors="replace") as f:
        log = f.read()
    assert TOKENS_SEEN, "no tokens were used"
    leaked = [t for t in TOKENS_SEEN if t in log or t.split(".")[2] in log]
    assert not leaked, f"{len(leaked)} token(s) found in {ARGS.server_log}"


@check("server shutdown (SIGINT): open connections get close 1001")
async def _shutdown() -> None:
    if not ARGS.server_pid:
        raise Skip("no --server-pid")
    chat = await user("alice")
    await join("r-shutdown", chat)
    echo = await open_ws("/ws/echo")
    os.kill(ARGS.server_pid, signal.SIGINT)
    await expect_close(chat, 1001)
    await expect_close(echo, 1001)


# ---------------------------------------------------------------------------------------------


class Skip(Exception):
    """The check cannot run with these arguments."""


async def main() -> int:
    passed = failed = skipped = 0
    for name, fn in CHECKS:
        started = time.monotonic()
        try:
            await asyncio.wait_for(fn(), 30)
        except Skip as why:
            skipped += 1
            print(f"skip {name}: {why}")
            continue
        except Exception as e:  # noqa: BLE001 - every failure is reported, the run goes on
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            traceback.print_exc(limit=3, file=sys.stdout)
            continue
        passed += 1
        print(f"ok   {name} ({(time.monotonic() - started) * 1000:.0f} ms)")
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base", help="http://HOST:PORT of a running wskit-chat")
    parser.add_argument("--allowed-origin", help="the server's one --allowed-origin")
    parser.add_argument("--jwt-secret", default=os.environ.get("WSKIT_JWT_SECRET", DEV_SECRET))
    parser.add_argument("--server-pid", type=int, help="send it SIGINT in the last check")
    parser.add_argument("--server-log", help="the server's log, checked for leaked tokens")
    ARGS = parser.parse_args()
    url = urllib.parse.urlsplit(ARGS.base)
    HOST, PORT = url.hostname or "127.0.0.1", url.port or 80
    sys.exit(asyncio.run(main()))
