//! Frame-level attacks: lying length fields, oversize and fragmented messages, split UTF-8,
//! binary on a text route, forbidden close codes, ping floods.

use super::app::{BIG_MAX_PAYLOAD, ROOM_MAX_OUTBOUND, SMALL_MAX_PAYLOAD};
use super::wire::{close_frame, frame, header, Peer};
use super::{heavy, rss_bytes, start, typed_client};
use crate::adapter::Adapter;
use crate::client::sync;
use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

/// Builds a message of `fragments` frames from `parts` (the first frame carries `opcode`).
fn fragmented(opcode: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let fin = if i + 1 == parts.len() { 0x80 } else { 0 };
        let op = if i == 0 { opcode } else { 0x0 };
        out.extend(frame(fin | op, part));
    }
    out
}

/// Expects the next frame to be a text frame with `payload`.
fn expect_text(peer: &mut Peer, payload: &[u8]) {
    let f = peer.read_frame().expect("a reply");
    assert_eq!((f.opcode, f.fin), (0x1, true), "{f:?}");
    assert!(f.payload == payload, "got {} bytes", f.payload.len());
}

/// A message over the route's limit closes with 1009, whether it arrives as one frame or as
/// fragments that are each small; a message exactly at the limit is fine.
pub fn oversize_message_closes_1009<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    let at_limit = vec![b'a'; SMALL_MAX_PAYLOAD];
    let mut peer = Peer::connect(addr, "/h/small");
    peer.send_frame(0x81, &at_limit);
    expect_text(&mut peer, &at_limit);

    let mut one = Peer::connect(addr, "/h/small");
    let _ = one.send(&frame(0x81, &vec![b'a'; SMALL_MAX_PAYLOAD + 1]));
    assert_eq!(one.read_until_close().1, Some(1009), "one frame");

    let mut pieces = Peer::connect(addr, "/h/small");
    let part = vec![b'b'; 16 * 1024];
    let parts: Vec<&[u8]> = (0..5).map(|_| part.as_slice()).collect();
    let _ = pieces.send(&fragmented(0x1, &parts));
    assert_eq!(pieces.read_until_close().1, Some(1009), "fragments");
}

/// A frame header announcing a payload far over the limit (a 64-bit length) is refused with
/// 1009 as soon as the header is read: the test never sends the payload, so a server that
/// waited for it (or allocated it) would time out. Decision: a length with the most
/// significant bit set (forbidden by RFC 6455 §5.2) is also refused, with 1009 or 1002.
pub fn oversize_frame_header_closes_1009_before_payload<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    for (path, len) in [
        ("/h/small", 1u64 << 40),
        ("/h/small", u64::from(u32::MAX) + 1),
        ("/h/text", 2 * BIG_MAX_PAYLOAD as u64),
        ("/h/json", 1u64 << 62),
    ] {
        let mut peer = Peer::connect(addr, path);
        let started = Instant::now();
        peer.send(&header(0x81, len)).expect("header");
        assert_eq!(peer.read_until_close().1, Some(1009), "{path} len {len}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    let mut msb = Peer::connect(addr, "/h/text");
    msb.send(&header(0x82, 1u64 << 63 | 5)).expect("header");
    let code = msb.read_until_close().1;
    assert!(matches!(code, Some(1009 | 1002)), "{code:?}");
    // A ping may carry at most 125 bytes: a longer one is a protocol error.
    let mut big_ping = Peer::connect(addr, "/h/text");
    let _ = big_ping.send(&frame(0x89, &[0u8; 126]));
    assert_eq!(big_ping.read_until_close().1, Some(1002));
}

/// 100,000 one-byte fragments are reassembled into one message on a route whose limit allows
/// it, and refused with 1009 on one whose limit does not; 100,000 empty continuations are
/// harmless. Meanwhile another connection is served promptly.
pub fn tiny_fragments_are_reassembled_or_refused<A: Adapter>() {
    const N: usize = 100_000;
    let _heavy = heavy();
    let (server, _) = start::<A>();
    let addr = server.addr();
    let (mut bystander, _) = typed_client(addr, "/h/json");
    let x = [b'x'];
    let ones: Vec<&[u8]> = (0..N).map(|_| &x[..]).collect();
    let flood = fragmented(0x1, &ones);
    let mut empties: Vec<&[u8]> = vec![b"x"];
    empties.extend((0..N).map(|_| &[][..]));
    empties.push(b"y");
    let empty_flood = fragmented(0x1, &empties);

    let flooder = std::thread::spawn(move || {
        let mut big = Peer::connect(addr, "/h/text");
        big.send(&flood).expect("flood");
        expect_text(&mut big, &vec![b'x'; N]);
        big.send(&empty_flood).expect("empty flood");
        expect_text(&mut big, b"xy");
        let mut small = Peer::connect(addr, "/h/small");
        let _ = small.send(&flood);
        assert_eq!(small.read_until_close().1, Some(1009));
    });
    let mut worst = Duration::ZERO;
    while !flooder.is_finished() {
        let t = Instant::now();
        assert!(sync(&mut bystander, "responsive").is_empty());
        worst = worst.max(t.elapsed());
    }
    flooder.join().expect("fragments handled as specified");
    eprintln!(
        "{}: slowest bystander echo during the flood: {worst:?}",
        A::NAME
    );
    assert!(
        worst < Duration::from_secs(2),
        "bystander stalled {worst:?}"
    );
}

/// UTF-8 is checked on the reassembled message: a character split across fragments is fine;
/// an invalid sequence split across fragments, an overlong form, an encoded surrogate or a
/// message ending mid-character closes with 1007. Decision (as Autobahn's 6.4.x "NON-STRICT"
/// notes): the check may happen when the message completes rather than at the first bad
/// fragment.
pub fn invalid_utf8_split_across_fragments_closes_1007<A: Adapter>() {
    let (server, _) = start::<A>();
    let addr = server.addr();
    let mut ok = Peer::connect(addr, "/h/text");
    ok.send(&fragmented(0x1, &[b"ab\xE2\x82", b"\xAC"]))
        .expect("send");
    expect_text(&mut ok, "ab€".as_bytes());
    ok.send(&fragmented(0x1, &[b"\xF0", b"\x9F", b"\x98", b"\x80"]))
        .expect("send");
    expect_text(&mut ok, "😀".as_bytes());
    let bad: [(&str, &[&[u8]]); 4] = [
        ("bad continuation", &[b"ab\xE2\x82", b"\x28"]),
        ("overlong", &[b"\xC0", b"\xAF"]),
        ("surrogate", &[b"\xED", b"\xA0\x80"]),
        ("ends mid-character", &[b"ab\xE2", b"\x82"]),
    ];
    for (name, parts) in bad {
        let mut peer = Peer::connect(addr, "/h/text");
        let _ = peer.send(&fragmented(0x1, parts));
        assert_eq!(peer.read_until_close().1, Some(1007), "{name}");
    }
}

/// Binary data on a route without a binary handler closes with 1003, whether it is one frame
/// or fragmented, on a raw-text route and on a typed one.
pub fn binary_on_text_route_closes_1003<A: Adapter>() {
    let (server, observer) = start::<A>();
    let addr = server.addr();
    for path in ["/h/text", "/h/json"] {
        let mut single = Peer::connect(addr, path);
        single.send_frame(0x82, &[0, 159, 146, 150]);
        assert_eq!(single.read_until_close().1, Some(1003), "{path}");
        let mut pieces = Peer::connect(addr, path);
        let _ = pieces.send(&fragmented(0x2, &[&[1, 2], &[3, 4]]));
        assert_eq!(pieces.read_until_close().1, Some(1003), "{path} fragmented");
    }
    let id = observer.opened("/h/json", Duration::from_secs(5));
    assert_eq!(
        observer.closed(&id.to_string(), Duration::from_secs(5)),
        1003
    );
}

/// Close codes a peer must never send (RFC 6455 §7.4: 0-999, 1004-1006, 1015, unassigned
/// 1016-2999, 5000+) are answered with 1002; allowed ones are echoed; a one-byte close
/// payload is a 1002, a close reason that is not UTF-8 a 1007. `on_close` sees the code the
/// server answered with.
pub fn forbidden_close_codes_close_1002<A: Adapter>() {
    let (server, observer) = start::<A>();
    let addr = server.addr();
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let mut peer = Peer::connect(addr, "/h/text");
        peer.send(&close_frame(code)).expect("close");
        assert_eq!(peer.read_until_close().1, Some(1002), "code {code}");
    }
    for code in [1000u16, 1001, 1003, 1007, 1011, 3000, 4999] {
        let mut peer = Peer::connect(addr, "/h/text");
        peer.send(&close_frame(code)).expect("close");
        assert_eq!(peer.read_until_close().1, Some(code), "code {code}");
    }
    let mut short = Peer::connect(addr, "/h/text");
    short.send(&frame(0x88, &[0x03])).expect("close");
    assert_eq!(short.read_until_close().1, Some(1002), "one-byte payload");
    let mut reason = Peer::connect(addr, "/h/text");
    reason
        .send(&frame(0x88, &[0x03, 0xE8, 0xFF, 0xFE]))
        .expect("close");
    assert_eq!(reason.read_until_close().1, Some(1007), "non-UTF-8 reason");

    let (ws, id) = typed_client(addr, "/h/json");
    let mut peer_stream = ws.into_inner();
    peer_stream.write_all(&close_frame(1005)).expect("close");
    assert_eq!(observer.closed(&id, Duration::from_secs(5)), 1002);
}

/// A client that floods pings and reads: every ping is answered (at least the latest one, as
/// RFC 6455 allows), and another connection is served meanwhile.
pub fn ping_flood_is_answered<A: Adapter>() {
    const PINGS: u32 = 10_000;
    let (server, _) = start::<A>();
    let addr = server.addr();
    let (mut bystander, _) = typed_client(addr, "/h/json");
    let mut flooder = Peer::connect(addr, "/h/text");
    let mut burst = Vec::new();
    for i in 0..PINGS {
        burst.extend(frame(0x89, &i.to_be_bytes()));
    }
    let writer = flooder.stream().try_clone().expect("clone");
    let send = std::thread::spawn(move || {
        let mut writer = writer;
        writer.write_all(&burst).expect("pings");
        writer.write_all(&frame(0x81, b"done")).expect("marker");
    });
    let t = Instant::now();
    assert!(sync(&mut bystander, "during the flood").is_empty());
    let bystander_rtt = t.elapsed();
    let mut pongs = 0u32;
    let mut last = None;
    loop {
        let f = flooder.read_frame().expect("pongs, then the echo");
        match f.opcode {
            0xA => {
                pongs += 1;
                last = Some(f.payload);
            }
            0x1 => {
                assert_eq!(f.payload, b"done");
                break;
            }
            other => panic!("unexpected opcode {other}"),
        }
    }
    send.join().expect("sent");
    eprintln!(
        "{}: {pongs} pongs for {PINGS} pings; bystander echo {bystander_rtt:?}",
        A::NAME
    );
    assert!(pongs >= 1);
    assert_eq!(last, Some((PINGS - 1).to_be_bytes().to_vec()));
    assert!(bystander_rtt < Duration::from_secs(2));
}

/// Decision: a client that floods pings and never reads the pongs must not make the server
/// buffer without bound. Pongs are output like any other, so the server may stop reading from
/// it (TCP backpressure: the flooder's writes stall), cut it off (its writes fail), or keep
/// only the latest pong (RFC 6455 §5.5.3 allows answering just the most recent ping); what it
/// holds for the connection stays near the route's `max_outbound_bytes`. The flooder (4 KiB
/// receive buffer) pushes up to 24 MiB of pings, then reads what was kept for it: more pong
/// bytes than the queue limit plus the kernel's socket buffers (4 MiB send buffer at most,
/// `tcp_wmem`) means the server held the rest in its own memory.
pub fn unread_ping_flood_is_bounded<A: Adapter>() {
    const BUDGET: usize = 24 * 1024 * 1024;
    const KERNEL: usize = 4 * 1024 * 1024 + 64 * 1024;
    let _heavy = heavy();
    let (server, _) = start::<A>();
    let addr = server.addr();
    let (mut bystander, _) = typed_client(addr, "/h/json");
    let before = rss_bytes();
    let mut peer = Peer::connect_with(addr, "/h/room", |s| {
        s.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    });
    assert_eq!(peer.read_frame().map(|f| f.opcode), Some(0x1), "welcome");
    let mut chunk = Vec::new();
    for i in 0..512u32 {
        let mut payload = [0u8; 125];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        chunk.extend(frame(0x89, &payload));
    }
    let mut stream = peer.stream().try_clone().expect("clone");
    stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let started = Instant::now();
    let mut sent = 0usize;
    let outcome = loop {
        if sent >= BUDGET {
            break "everything was read";
        }
        match stream.write_all(&chunk) {
            Ok(()) => sent += chunk.len(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break "stalled (the server stopped reading)"
            }
            Err(_) => break "cut off",
        }
        if started.elapsed() > Duration::from_secs(20) {
            break "too slow to tell";
        }
    };
    let flood_time = started.elapsed();
    let after_flood = rss_bytes();
    assert!(sync(&mut bystander, "unaffected").is_empty());
    // Now read what the server kept for the flooder: pongs, until the echo of a marker (or
    // the close, for a server that cut it off).
    let marker = frame(0x81, br#"{"type":"echo","message":"end of flood"}"#);
    let _ = stream.write_all(&marker);
    let mut pong_bytes = 0usize;
    let end = loop {
        match peer.read_frame() {
            Some(f) if f.opcode == 0xA => pong_bytes += f.payload.len() + 2,
            Some(f) if f.opcode == 0x8 => break format!("close {:?}", f.close_code()),
            Some(f) if f.opcode == 0x1 => break String::from_utf8_lossy(&f.payload).into_owned(),
            Some(f) => panic!("unexpected frame {f:?}"),
            None => break "end of stream".to_owned(),
        }
    };
    eprintln!(
        "{}: unread ping flood: {outcome} after {} KiB in {flood_time:?}; {} KiB of pongs \
         were kept for it, then {end}; RSS {} -> {} MiB",
        A::NAME,
        sent / 1024,
        pong_bytes / 1024,
        before.unwrap_or(0) >> 20,
        after_flood.unwrap_or(0) >> 20,
    );
    assert!(
        pong_bytes <= ROOM_MAX_OUTBOUND + KERNEL,
        "the server queued {} MiB of pongs for a client that did not read them (it read {} \
         MiB of pings; the route's outbound limit is {} KiB)",
        pong_bytes >> 20,
        sent >> 20,
        ROOM_MAX_OUTBOUND / 1024
    );
}
